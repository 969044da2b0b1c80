"""The Fine-tuning page in the real app and Debian's chromium, at 1400 x 900: the held-out comparison
comes first on screen, the all-stimuli figure below it says it includes training images.

The store: a study of every face of two splits (28 PublicTest, 28 Training faces) and a variant
re-fine-tuned on the curated dataset of the Training split only, so the 28 PublicTest faces are
held out and the all-stimuli figures include training images. Screenshots go to
$DISFER_SCREENSHOTS/finetune (default <tmp>/disfer_e2e_screenshots/finetune). Skips where chromium
is absent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, log_tail, running_app, settle
from conftest import write_fer2013_csv

from disfer.models import list_models
from disfer.store import Store

HELD_OUT = "Held-out faces only"
ALL_STIMULI = "Before / after on all stimuli"
BOX = "el => { const r = el.getBoundingClientRect(); return {top: r.top + window.scrollY, height: r.height}; }"


@pytest.fixture(scope="module")
def finetuned_store(tmp_path_factory) -> tuple[Path, str]:
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013
    from disfer.finetune import finetune
    from disfer.ledger import record_decision

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    if not next(m for m in list_models() if m.name == "minixception").weights_present:
        pytest.skip("mini-Xception weights absent")
    folder = tmp_path_factory.mktemp("e2e_finetune")
    store = Store(folder / "study.duckdb")
    ingest_fer2013(store, write_fer2013_csv(folder / "fer.csv", per_emotion=4, splits=("PublicTest", "Training")))
    build_study(store, per_class=8, seed=0)   # every face of both splits
    with store.read() as con:
        sid = con.execute("SELECT min(source_id) FROM sources WHERE split = 'Training'").fetchone()[0]
    record_decision(store, sid, ["happiness"], None, "relabeled", "ana")
    variant = finetune(store, "minixception", protocol="curated", train_split="Training", epochs=2,
                       batches=2, per_class=1, device="cpu")
    return store.path, variant


def test_the_finetune_page_shows_the_held_out_comparison_first(finetuned_store):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    db, variant = finetuned_store
    shots = Path(os.environ.get("DISFER_SCREENSHOTS") or Path(tempfile.gettempdir()) / "disfer_e2e_screenshots")
    shots = shots / "finetune"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    print(f"\nscreenshots: {shots}")
    log = db.with_suffix(".log")
    with running_app(db, log=log) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/finetune")
            settle(page)
            page.screenshot(path=str(shots / "page.png"), full_page=True)
            main = page.locator('[data-testid="stMain"]')
            assert main.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0, \
                log_tail(log)
            assert variant in main.inner_text()

            held = main.locator("h3", has_text=HELD_OUT)
            figures = main.locator('[data-testid="stExpander"]', has_text=ALL_STIMULI)
            # curated labels first (the variant trained on them), then the original labels
            assert held.count() == 2 and figures.count() == 2
            assert "against the curated labels" in held.first.inner_text()
            first_held, first_figure = held.first.evaluate(BOX), figures.first.evaluate(BOX)
            assert first_held["top"] < first_figure["top"], (first_held, first_figure)
            for i in range(2):   # each label kind: its held-out section above its all-stimuli figure
                assert held.nth(i).evaluate(BOX)["top"] < figures.nth(i).evaluate(BOX)["top"]
            # the held-out figures: the 28 PublicTest faces (10 stimuli each) never trained on
            assert main.get_by_text("280 held-out stimuli of 28 faces").count() == 2
            assert main.locator('[data-testid="stMetricLabel"]', has_text="McNemar p (exact)").count() == 2
            label = figures.first.locator("summary").inner_text()
            assert "includes training images" in label, label

            # Opened, the all-stimuli figure says why it is no measure of generalisation, and is
            # drawn below the held-out comparison.
            figures.first.locator("summary").click()
            settle(page)
            page.wait_for_timeout(800)   # the chart draws once its expander is shown
            chart = figures.first.locator(".vega-embed").first
            chart.wait_for(state="visible", timeout=30_000)
            assert "include the images the variant trained on" in figures.first.inner_text()
            metrics = main.locator('[data-testid="stMetric"]').first.evaluate(BOX)
            assert metrics["top"] + metrics["height"] <= chart.evaluate(BOX)["top"]
            held.first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "held_out_first.png"))
            chart.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "all_stimuli_opened.png"))
            page.screenshot(path=str(shots / "page_opened.png"), full_page=True)
        finally:
            browser.close()
    assert {"page.png", "held_out_first.png", "all_stimuli_opened.png"} <= {p.name for p in shots.iterdir()}
