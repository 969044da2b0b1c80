"""End to end: the Curation page in a real headless Chromium at 1400x900 on the demo study: the face
and the Save button on one screen without scrolling, then 20 decisions by keyboard only (no mouse,
no scrolling), found again in `disfer curate log --json`. Prints the seconds per decision (key press
to the next face, its script run ended) and their total.

Uses Debian's chromium driven by pip's playwright, as tests/test_e2e_browser.py does; skips, saying
why, where either is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, running_app
from app_server import settle as _settle

from disfer.store import Store

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1400, "height": 900}
DECISIONS = 20
# Confirm the original label; exclude; toggle neutral (5) and save (Ctrl+Enter), in turn. The first
# "5, Ctrl+Enter" is pressed at once (a save records the form as it is when the key is pressed);
# later ones wait for the toggle's run to end in between, as a curator who looks at the form does.
KEYS = (["a"], ["x"], ["5", "Control+Enter"])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """The demo study without its fine-tuning (faces, crowd, mini-Xception's predictions)."""
    from disfer.demo import build_demo

    path = tmp_path_factory.mktemp("e2e_curation") / "demo.duckdb"
    build_demo(Store(path, lock_timeout=30), seed=0, finetune=False)
    return path


@pytest.fixture(scope="module")
def app_url(demo_db):
    # no curator name from the environment: the test signs its decisions through the page
    with running_app(demo_db, log=demo_db.with_suffix(".log"), drop_env=("DISFER_CURATOR",)) as url:
        yield url


def _heading(page) -> str:
    return page.locator('[data-testid="stMain"] h3').first.inner_text().strip()


def _inside(box: dict | None) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 \
        and box["x"] + box["width"] <= VIEWPORT["width"] and box["y"] + box["height"] <= VIEWPORT["height"]


def _decide(page, keys: list[str], timeout_s: float = 60, look: bool = False) -> float:
    """Press `keys` (no mouse); seconds until the next face is shown and the script run has ended.
    look: before the last key, wait until the run the others started has ended."""
    before = _heading(page)
    running = page.locator('[data-testid="stApp"][data-test-script-state="running"]')
    start = time.monotonic()
    for i, key in enumerate(keys):
        if look and i == len(keys) - 1:
            page.wait_for_timeout(50)  # the key's run starts
            while running.count():
                page.wait_for_timeout(25)
        page.keyboard.press(key)
    deadline = start + timeout_s
    while _heading(page) == before or running.count():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still on {before!r} after pressing {keys}")
        page.wait_for_timeout(25)
    took = time.monotonic() - start
    _settle(page)  # everything arrived before the next key
    return took


def test_one_screen_and_twenty_keyboard_decisions(app_url, demo_db):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    shots = Path(os.environ.get("DISFER_SCREENSHOTS") or Path(tempfile.gettempdir()) / "disfer_e2e_screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(app_url)  # the router first (see test_e2e_browser)
            _settle(page)
            page.goto(f"{app_url}/curation?curator=e2e")
            _settle(page)
            page.screenshot(path=str(shots / "curation_1400x900.png"))
            face = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
            save = page.get_by_role("button", name="Save decision")
            face_box, save_box = face.bounding_box(), save.bounding_box()
            assert face_box["width"] >= 240, face_box
            assert _inside(face_box) and _inside(save_box), (face_box, save_box)
            assert page.evaluate("window.scrollY") == 0
            assert page.locator('[data-testid="stSidebar"] input[aria-label="Curator"]').input_value() == "e2e"

            first = _heading(page)
            started = time.monotonic()
            seconds = [_decide(page, KEYS[i % len(KEYS)], look=i > len(KEYS)) for i in range(DECISIONS)]
            wall = time.monotonic() - started
            page.screenshot(path=str(shots / f"curation_after_{DECISIONS}.png"))
            assert page.evaluate("window.scrollY") == 0
            progress = page.locator('[data-testid="stMain"]').inner_text()
            assert f"{DECISIONS} decisions today" in progress and f"mine {DECISIONS} decided" in progress
        finally:
            browser.close()
    print(f"\nseconds per decision (key press to the next face, its run ended): {[round(s, 2) for s in seconds]}; "
          f"mean {sum(seconds) / len(seconds):.2f} s, total {sum(seconds):.1f} s for {DECISIONS} decisions "
          f"({wall:.1f} s with the settling between them); screenshots: {shots}")

    out = subprocess.run([sys.executable, "-m", "disfer.cli", "--db", str(demo_db), "curate", "log", "--json"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    log = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["curator"] for e in log] == ["e2e"] * DECISIONS
    for i, e in enumerate(log):
        if i % 3 == 0:
            assert e["status"] == "confirmed", e
        elif i % 3 == 1:
            assert e["status"] == "excluded" and e["labels"] == [], e
        else:  # "5, Ctrl+Enter" at once: neutral toggled on (or off, where the label was neutral), saved
            assert ("neutral" in e["labels"]) != (e["status"] == "excluded"), e
    assert len({e["source_id"] for e in log}) == DECISIONS  # never the same face twice
    assert first.startswith(f"Source {log[0]['source_id']}:")
