"""How far one hosted server goes: N signed-in browser sessions at once (one chromium, N contexts),
half of them curators saving decisions while the others move through the analysis pages.

Prints, per N: the median and 95th percentile seconds for a page to settle, the curators' save
latency (click to the next face shown), and the server's CPU share. Sign-in goes through a local
OpenID Connect provider (oidc-provider-mock), as in tests/test_e2e_hosted.py.

    .venv/bin/python benchmarks/bench_hosted.py [N ...]        (default: 5 10 20)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = ["", "stimuli", "robustness", "confusion", "agreement", "audit"]
ROUNDS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


async def settle(page) -> None:
    await page.wait_for_selector('[data-testid="stMain"] h1', timeout=180_000)
    quiet = None
    while True:
        busy = await page.locator('[data-testid="stApp"][data-test-script-state="running"]').count()
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
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
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
    idp_port, app_port = free_port(), free_port()
    users = [json.dumps({"sub": f"u{i}", "email": f"u{i}@lab.org", "roles": ["curator" if i % 2 == 0 else "viewer"]})
             for i in range(max(sizes))]
    idp = subprocess.Popen([str(BIN / "oidc-provider-mock"), "--port", str(idp_port),
                            *[a for u in users for a in ("--user-claims", u)]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{app_port}"
    secrets = folder / "secrets.toml"
    secrets.write_text(f'[auth]\nredirect_uri = "{url}/oauth2callback"\ncookie_secret = "bench-cookie-secret-0123"\n'
                       f'client_id = "disfer"\nclient_secret = "x"\n'
                       f'server_metadata_url = "http://127.0.0.1:{idp_port}/.well-known/openid-configuration"\n')
    env = {**os.environ, "DISFER_DB": str(db), "DISFER_HOSTED": "1", "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
                            "--server.port", str(app_port), "--server.address", "127.0.0.1",
                            "--server.headless", "true", "--secrets.files", str(secrets)],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(f"http://127.0.0.1:{idp_port}/.well-known/openid-configuration")
        wait(f"{url}/_stcore/health")
        print(f"{'sessions':>8} {'wall s':>8} {'page med':>9} {'page p95':>9} {'save med':>9} {'save p95':>9} "
              f"{'server cpu s':>12}")
        for n in sizes:
            cpu_before = _cpu_seconds(app.pid)
            r = asyncio.run(run_n(n, url))
            cpu = _cpu_seconds(app.pid) - cpu_before
            print(f"{n:>8} {r['wall']:>8.1f} {r['page_med']:>9.2f} {r['page_p95']:>9.2f} {r['save_med']:>9.2f} "
                  f"{r['save_p95']:>9.2f} {cpu:>12.1f}", flush=True)
    finally:
        app.terminate()
        idp.terminate()
        shutil.rmtree(folder, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
