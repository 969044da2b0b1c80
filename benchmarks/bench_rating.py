"""Load test of the crowd study's rating page: N participants at once open the study link,
consent and rate a whole playlist (40 faces and the attention checks) with human-like think times,
against one real app on loopback.

Two kinds of participant: `--client ws` (default) speaks Streamlit's own websocket protocol, as the
browser's script does (one connection, the same messages: a button press is a widget trigger), so
50 of them cost the machine little and the server is what is measured; `--client browser` drives
one Chromium context each (realistic, but on this 2-core machine 25 Chromium renderers saturate
it before the server does).

    python benchmarks/bench_rating.py                 # N = 10, 25, 50 on a fresh demo store each
    python benchmarks/bench_rating.py --n 5 --think 0.2 --client browser

Prints, for each N side by side: answers, lost and duplicated votes (checked in the store),
the server's time per answer (callback start to the next face sent, from the page's own
DISFER_RATE_TIMINGS log) at the median and 95th percentile, the same as the browser sees it (key
press to the next image on screen), and the wall time. Goal (issue 18): N = 50 with 0 lost and 0
duplicated votes, server p95 under 200 ms. Not a test: this machine is noisy, compare the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app_server import CHROMIUM, CHROMIUM_ARGS, RUNNING, running_app, study_store  # noqa: E402

from disfer.emotions import EMOTIONS  # noqa: E402
from disfer.store import Store  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def participant(browser, url: str, pid: str, think: float, seconds: list[float], rng: random.Random,
                      retries: list[int]) -> int:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(f"{url}/rate?PROLIFIC_PID={pid}&STUDY_ID=load&SESSION_ID=s{pid}", timeout=300_000)
    await page.get_by_role("button", name="I agree").click(timeout=300_000)
    await page.get_by_role("button", name="Start").click(timeout=300_000)
    progress = page.locator('[data-testid="stProgress"]')
    await progress.wait_for(timeout=300_000)
    answered = 0
    while True:
        while await page.locator(RUNNING).count():
            await asyncio.sleep(0.02)
        text = await page.locator('[data-testid="stMain"]').inner_text()
        if "Thank you" in text:
            break
        asked = next((e for e in EMOTIONS if f"please press {e}" in text), None)
        choice = asked or rng.choice(EMOTIONS)
        before = (await progress.inner_text()).strip()
        await asyncio.sleep(rng.uniform(0.5, 1.5) * think)  # looking at the face
        start = time.monotonic()
        for _ in range(3):
            await page.keyboard.press(str(EMOTIONS.index(choice) + 1))
            try:
                await page.wait_for_function(
                    "b => { const p = document.querySelector('[data-testid=\"stProgress\"]');"
                    " return document.body.innerText.includes('Thank you') || (p && !p.innerText.includes(b)); }",
                    arg=before, timeout=60_000, polling=20)
                break
            except Exception:  # noqa: BLE001 - a key press the page never saw: press again, as a person would
                retries[0] += 1
        seconds.append(time.monotonic() - start)
        answered += 1
    await context.close()
    return answered


class WsParticipant:
    """One participant as Streamlit's frontend talks to the server: rerun requests carrying the
    page, the query string and the pressed button's trigger; the answer is the page's elements."""

    def __init__(self, ws, pid: str):
        self.ws, self.pid = ws, pid

    async def run(self, trigger: str | None = None) -> dict:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = f"PROLIFIC_PID={self.pid}&STUDY_ID=load&SESSION_ID=s{self.pid}"
        msg.rerun_script.page_name = "rate"
        if trigger is not None:
            widget = msg.rerun_script.widget_states.widgets.add()
            widget.id, widget.trigger_value = trigger, True
        await self.ws.send(msg.SerializeToString())
        page = {"buttons": {}, "text": [], "progress": None}
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await self.ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "script_finished":
                return page
            if kind != "delta" or fwd.delta.WhichOneof("type") != "new_element":
                continue
            element = fwd.delta.new_element
            which = element.WhichOneof("type")
            if which == "button":
                page["buttons"][element.button.label] = element.button.id
            elif which == "progress":
                page["progress"] = element.progress.text
            elif which == "markdown":
                page["text"].append(element.markdown.body)
            elif which == "heading":
                page["text"].append(element.heading.body)


async def ws_participant(url: str, pid: str, think: float, seconds: list[float], rng: random.Random,
                         retries: list[int]) -> int:
    import websockets

    # No client pings: a busy server answering late is what we measure, not a reason to hang up.
    async with websockets.connect(url.replace("http://", "ws://") + "/_stcore/stream", max_size=None,
                                  ping_interval=None) as ws:
        me = WsParticipant(ws, pid)
        page = await me.run()
        page = await me.run(page["buttons"]["I agree"])
        page = await me.run(page["buttons"]["Start"])
        answered = 0
        while page["progress"] is not None:
            text = " ".join(page["text"])
            asked = next((e for e in EMOTIONS if f"please press *{e}*" in text), None)
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            start = time.monotonic()
            before = page["progress"]
            page = await me.run(page["buttons"][asked or rng.choice(EMOTIONS)])
            seconds.append(time.monotonic() - start)
            answered += 1
            if page["progress"] == before:
                retries[0] += 1
        assert any("Thank you" in t for t in page["text"]), page
        return answered


async def drive_ws(url: str, n: int, think: float) -> tuple[list[float], list[int], float]:
    seconds: list[float] = []
    retries = [0]
    rngs = [random.Random(i) for i in range(n)]
    start = time.monotonic()

    async def later(i):
        await asyncio.sleep(rngs[i].uniform(0, 0.1 * n))
        return await ws_participant(url, f"load{i:03d}", think, seconds, rngs[i], retries)

    counts = await asyncio.gather(*(later(i) for i in range(n)))
    if retries[0]:
        print(f"  {retries[0]} answer(s) did not move the participant on", flush=True)
    return seconds, list(counts), time.monotonic() - start


async def drive(url: str, n: int, think: float) -> tuple[list[float], list[int], float]:
    from playwright.async_api import async_playwright

    seconds: list[float] = []
    retries = [0]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        start = time.monotonic()
        rngs = [random.Random(i) for i in range(n)]
        # arrivals spread over the first seconds, as a recruiter's link fills
        async def later(i):
            await asyncio.sleep(rngs[i].uniform(0, 0.1 * n))
            return await participant(browser, url, f"load{i:03d}", think, seconds, rngs[i], retries)
        counts = await asyncio.gather(*(later(i) for i in range(n)))
        wall = time.monotonic() - start
        await browser.close()
    if retries[0]:
        print(f"  {retries[0]} key press(es) the page did not react to within 60 s were repeated", flush=True)
    return seconds, list(counts), wall


def check_store(db: Path, n: int) -> tuple[int, int, int]:
    """(rows stored: votes plus attention checks, votes lost, sessions not complete). Lost: images of
    a participant's playlist without their vote once they finished (or never started)."""
    with Store(db).read() as con:
        rows = con.execute(
            "SELECT r.participant_id, r.status, (SELECT count(*) FROM playlists p WHERE p.playlist_id = r.playlist_id),"
            " (SELECT count(*) FROM votes v WHERE v.participant_id = r.participant_id),"
            " (SELECT count(*) FROM attention_checks c WHERE c.participant_id = r.participant_id)"
            " FROM rating_sessions r WHERE starts_with(r.participant_id, 'load')").fetchall()
    lost = sum(size - votes for _, _, size, votes, _ in rows) + (n - len(rows)) * 40
    return sum(r[3] + r[4] for r in rows), lost, sum(1 for r in rows if r[1] != "complete")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 25, 50], help="participants at once")
    parser.add_argument("--think", type=float, default=1.5, help="mean seconds spent on a face (default 1.5)")
    parser.add_argument("--db", type=Path, help="a study store to copy (default: build the demo)")
    parser.add_argument("--client", choices=("ws", "browser"), default="ws",
                        help="websocket participants (default) or one Chromium context each")
    args = parser.parse_args()
    if args.client == "browser" and not CHROMIUM.exists():
        print(f"{CHROMIUM} is absent: apt-get install chromium", file=sys.stderr)
        return 2
    rows = []
    head = ("N", "answers", "rows stored", "lost", "dup", "unfinished", "srv p50 ms", "srv p95 ms", "srv max ms",
            "client p50 s", "client p95 s", "wall s")
    print(f"client: {args.client}; think time {args.think} s a face on average\n"
          + "  ".join(f"{h:>13}" for h in head), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        template = study_store(args.db, Path(tmp))
        for n in args.n:
            db = Path(tmp) / f"load{n}.duckdb"
            shutil.copy(template, db)
            timings = Path(tmp) / f"timings{n}.txt"
            timings.write_text("")
            with running_app(db, log=Path(tmp) / f"app{n}.log", env={"DISFER_RATE_TIMINGS": str(timings)}) as url:
                seconds, counts, wall = asyncio.run((drive_ws if args.client == "ws" else drive)(url, n, args.think))
            server = [float(x) for x in timings.read_text().split()]
            stored, lost, unfinished = check_store(db, n)
            duplicated = max(0, stored - sum(counts))  # more rows than answers given
            rows.append((n, sum(counts), stored, lost, duplicated, unfinished,
                         statistics.median(server), pct(server, 0.95), max(server),
                         statistics.median(seconds), pct(seconds, 0.95), wall))
            print("  ".join(f"{v:>13.0f}" if isinstance(v, int) else f"{v:>13.2f}" for v in rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
