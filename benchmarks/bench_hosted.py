"""How far one hosted server goes: N signed-in browser sessions at once (one chromium, N contexts),
half of them curators saving decisions while the others move through the analysis pages.

Prints, per N: the median and 95th percentile seconds for a page to settle, the curators' save
latency (click to the next face shown), and the server's CPU share. Sign-in goes through a local
OpenID Connect provider (oidc-provider-mock), as in tests/test_e2e_hosted.py.

    .venv/bin/python benchmarks/bench_hosted.py [N ...]        (default: 5 10 20)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))

from app_server import CHROMIUM, CHROMIUM_ARGS, RUNNING, running_hosted_app  # noqa: E402

PAGES = ["", "stimuli", "robustness", "confusion", "agreement", "audit"]
ROUNDS = 2


async def settle(page) -> None:
    await page.wait_for_selector('[data-testid="stMain"] h1', timeout=180_000)
    quiet = None
    while True:
        busy = await page.locator(RUNNING).count()
        if busy:
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet > 0.5:
            return
        await page.wait_for_timeout(100)


async def session(browser, url: str, who: str, curator: bool, page_times: list, save_times: list) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/authorize**", timeout=120_000)
    await page.locator(f'button[name=sub][value="{who}"]').click()
    await page.wait_for_url(f"{url}/**", timeout=120_000)
    await settle(page)
    for _ in range(ROUNDS):
        if curator:
            await page.goto(f"{url}/curation")
            await settle(page)
            for _ in range(3):
                start = time.monotonic()
                await page.get_by_role("button", name="Confirm original label").click()
                await page.wait_for_timeout(50)
                await settle(page)
                save_times.append(time.monotonic() - start)
        for path in PAGES:
            start = time.monotonic()
            await page.goto(f"{url}/{path}")
            await settle(page)
            page_times.append(time.monotonic() - start)
    await context.close()


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run_n(n: int, url: str) -> dict:
    from playwright.async_api import async_playwright

    page_times: list[float] = []
    save_times: list[float] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        start = time.monotonic()
        await asyncio.gather(*(session(browser, url, f"u{i}", i % 2 == 0, page_times, save_times)
                               for i in range(n)))
        wall = time.monotonic() - start
        await browser.close()
    return {"n": n, "wall": wall, "page_med": statistics.median(page_times), "page_p95": percentile(page_times, 0.95),
            "save_med": statistics.median(save_times) if save_times else float("nan"),
            "save_p95": percentile(save_times, 0.95)}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [5, 10, 20]
    folder = Path(tempfile.mkdtemp(prefix="disfer-bench-hosted-"))
    db = folder / "demo.duckdb"
    subprocess.run([str(BIN / "disfer"), "--quiet", "--db", str(db), "demo", "--no-finetune"], check=True,
                   capture_output=True)
    users = [{"sub": f"u{i}", "email": f"u{i}@lab.org", "roles": ["curator" if i % 2 == 0 else "viewer"]}
             for i in range(max(sizes))]
    try:
        with running_hosted_app(db, users, folder) as url:
            pid = _server_pid(url)
            print(f"{'sessions':>8} {'wall s':>8} {'page med':>9} {'page p95':>9} {'save med':>9} {'save p95':>9} "
                  f"{'server cpu s':>12}")
            for n in sizes:
                cpu_before = _cpu_seconds(pid)
                r = asyncio.run(run_n(n, url))
                cpu = _cpu_seconds(pid) - cpu_before
                print(f"{n:>8} {r['wall']:>8.1f} {r['page_med']:>9.2f} {r['page_p95']:>9.2f} {r['save_med']:>9.2f} "
                      f"{r['save_p95']:>9.2f} {cpu:>12.1f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _server_pid(url: str) -> int:
    """The pid of our child process that runs streamlit (running_app started it), for its CPU seconds."""
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"streamlit" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    raise RuntimeError(f"no streamlit child process serves {url}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
