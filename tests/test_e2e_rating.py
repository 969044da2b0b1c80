"""The crowd study run end to end in a real browser: three participants open the study link in
Debian's chromium, consent, rate their playlists by keyboard (one answers the attention checks
wrongly), get their codes; the Crowd study page shows the progress; `disfer report` counts their
votes (the failed participant's only when asked). Skips, saying why, without chromium."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, ROOT, RUNNING, running_app
from app_server import settle as _settle

from disfer.access import Actor
from disfer.data import rating
from disfer.emotions import EMOTIONS
from disfer.store import Store

VIEWPORT = {"width": 1400, "height": 900}
PARTICIPANTS = {"5f0c1a2b3c4d5e6f7a8b9c01": "careful", "5f0c1a2b3c4d5e6f7a8b9c02": "careful",
                "5f0c1a2b3c4d5e6f7a8b9c03": "careless"}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory, demo_store) -> Path:
    db = tmp_path_factory.mktemp("e2e_rating") / "study.duckdb"
    shutil.copy(demo_store, db)
    rating.save_settings(Store(db), rating.RatingSettings(checks=2, code_completed="DONE77", code_failed="FAIL77",
                                                          code_no_consent="NOPE77"),
                         Actor("local", "local", "admin"))
    return db


def _screen(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _progress(page) -> str:
    return page.locator('[data-testid="stProgress"]').inner_text() if page.locator(
        '[data-testid="stProgress"]').count() else ""


def _wait_change(page, before: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _progress(page) == before or page.locator(RUNNING).count():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still at {before!r}")
        page.wait_for_timeout(20)


def _participate(browser, url: str, pid: str, careless: bool, shots: Path) -> tuple[str, list[float]]:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/rate?PROLIFIC_PID={pid}&STUDY_ID=study1&SESSION_ID=s-{pid[-2:]}")
    _settle(page)
    assert page.locator('[data-testid="stSidebar"]').is_hidden()  # nothing of the dashboard around it
    page.get_by_role("button", name="I agree").click()
    page.get_by_role("button", name="Start").wait_for()
    _settle(page)
    page.get_by_role("button", name="Start").click()
    page.locator('[data-testid="stProgress"]').wait_for()
    _settle(page)
    seconds = []
    while "Thank you" not in _screen(page):
        text = _screen(page)
        asked = next((e for e in EMOTIONS if f"please press {e}" in text), None)
        if asked is not None and not shots.joinpath("rate-check.png").exists():
            page.screenshot(path=str(shots / "rate-check.png"))
        if asked is None:
            choice = EMOTIONS[len(seconds) % 7]
        else:
            choice = EMOTIONS[(EMOTIONS.index(asked) + 1) % 7] if careless else asked
        before = _progress(page)
        start = time.monotonic()
        page.keyboard.press(str(EMOTIONS.index(choice) + 1))
        page.wait_for_function("b => !document.body.innerText.includes(b) || document.body.innerText"
                               ".includes('Thank you')", arg=before, timeout=60_000)
        if "Thank you" not in _screen(page):
            _wait_change(page, before)
        seconds.append(time.monotonic() - start)
        if len(seconds) == 1:
            page.screenshot(path=str(shots / "rate-face.png"))
    _settle(page)
    page.screenshot(path=str(shots / f"rate-end-{'careless' if careless else 'careful'}.png"))
    code = page.locator('[data-testid="stCode"]').inner_text().strip()
    page.close()
    return code, seconds


def _report(db: Path, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "disfer.cli", "--db", str(db), "report", "--json", "--bootstrap", "0",
                          "--no-consensus", *extra],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return json.loads(out.stdout)


def test_three_participants_run_the_study_in_chromium(study_db):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    shots = Path(os.environ.get("DISFER_SCREENSHOTS") or Path(tempfile.gettempdir()) / "disfer_e2e_screenshots") / "rating"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    print(f"\nscreenshots: {shots}")
    before = _report(study_db)["counts"]
    codes, seconds = {}, []
    with running_app(study_db, log=study_db.with_suffix(".log")) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for pid, kind in PARTICIPANTS.items():
                codes[pid], took = _participate(browser, url, pid, kind == "careless", shots)
                seconds += took
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/study")
            _settle(page)
            page.screenshot(path=str(shots / "study-admin.png"), full_page=True)
            metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
        finally:
            browser.close()
    print(f"seconds per answer, key press to the next image (n = {len(seconds)}): median "
          f"{statistics.median(seconds):.2f}, 95th percentile {sorted(seconds)[int(0.95 * len(seconds))]:.2f}")
    assert codes == {pid: "FAIL77" if kind == "careless" else "DONE77" for pid, kind in PARTICIPANTS.items()}
    shown = {m.split("\n")[0]: m.split("\n")[-1] for m in metrics}
    assert shown["Complete"] == "2" and shown["Failed checks"] == "1" and shown["In progress"] == "0"
    # Their votes are in the report: two participants' playlists by default, three when asked.
    store = Store(study_db)
    with store.read() as con:
        sizes = dict(con.execute("SELECT r.participant_id, count(v.stimulus_id) FROM rating_sessions r "
                                 "JOIN votes v USING (participant_id) GROUP BY 1").fetchall())
    assert set(sizes) == set(PARTICIPANTS)
    after = _report(study_db)["counts"]
    careful = sum(n for pid, n in sizes.items() if PARTICIPANTS[pid] == "careful")
    assert after["participants"] == before["participants"] + 2
    assert after["votes"] == before["votes"] + careful
    assert after["participants_left_out"] == 1
    every = _report(study_db, "--include-failed")["counts"]
    assert every["participants"] == before["participants"] + 3 and every["votes"] == before["votes"] + sum(sizes.values())
