"""README pictures: the real app on the demo study, in Debian's chromium, saved as small PNGs.

    python scripts/screenshots.py                    # builds a demo store in a temporary folder
    python scripts/screenshots.py --db demo.duckdb   # or uses a store you have

Writes docs/screenshots/{overview,robustness,confusion,audit}.png (each well under 300 KB: the
browser window at 1400x1150, reduced to a 256-colour palette). Needs chromium at /usr/bin/chromium
and pip's playwright; never downloads a browser.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app_server import CHROMIUM, CHROMIUM_ARGS, running_app, study_store  # noqa: E402
from app_server import settle as _settle  # noqa: E402

# (url path, file name, tab to open first or None); the router's first page is served at the root.
SHOTS = [("", "overview", None), ("robustness", "robustness", None),
         ("confusion", "confusion", None), ("audit", "audit", None)]
VIEWPORT = {"width": 1400, "height": 1150}
LIMIT = 300_000


def small_png(raw: bytes) -> bytes:
    """The screenshot reduced to a 256-colour palette (a dashboard has few colours): a third the size."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a study store (default: build the demo in a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is absent: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = study_store(args.db, Path(tmp))
        with running_app(db, log=Path(tmp) / "app.log") as url:
            args.out.mkdir(parents=True, exist_ok=True)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url)
                _settle(page)
                for path, name, tab in SHOTS:
                    page.goto(f"{url}/{path}")
                    _settle(page)
                    if tab:
                        page.get_by_role("tab", name=tab).click()
                        _settle(page)
                    time.sleep(0.5)  # charts finish drawing after the run ends
                    data = small_png(page.screenshot())
                    target = args.out / f"{name}.png"
                    target.write_bytes(data)
                    print(f"{target}: {len(data) / 1000:.0f} KB")
                    if len(data) > LIMIT:
                        print(f"{target} is over {LIMIT // 1000} KB", file=sys.stderr)
                        return 1
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
