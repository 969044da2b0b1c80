"""End to end: the real app (`streamlit run`) in a real headless Chromium, every page opened.

Uses Debian's chromium (`apt-get install chromium`) driven by pip's playwright; never downloads a
browser. Skips, saying why, where chromium is absent. Screenshots go to $DISFER_SCREENSHOTS (default: <tmp>/disfer_e2e_screenshots); the test prints it.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, ROOT, log_tail, running_app
from app_server import settle as _settle
from tests_support import network_attempts, watch_network


def router_pages() -> dict[str, str]:
    """url path (st.Page infers it from the file name) -> title, for every page the router lists
    whose file is present (the router skips missing ones too)."""
    tree = ast.parse((ROOT / "streamlit_app.py").read_text())
    listed = next(ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES")
    return {Path(path).stem: title for path, title, *_ in listed if (ROOT / path).exists()}


# The dashboard's own pages show their router title as the heading.
TITLED = {"overview", "stimuli", "robustness", "confusion", "agreement", "audit", "saliency"}
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


@pytest.fixture(scope="module")
def study_copy(tmp_path_factory, request) -> Path:
    """A copy of the demo store (the session's demo_store fixture), or a small study without it."""
    folder = tmp_path_factory.mktemp("e2e_store")
    try:
        demo = request.getfixturevalue("demo_store")
        shutil.copy(getattr(demo, "path", demo), folder / "study.duckdb")
    except pytest.FixtureLookupError:
        sys.path.insert(0, str(Path(__file__).parent))
        from test_pages import make_small_study

        make_small_study(folder / "study.duckdb", kind="demo")
    return folder / "study.duckdb"


@pytest.fixture(scope="module")
def network_log(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """The app server runs under `watch_network`: the log of its attempts to reach another host."""
    return watch_network(tmp_path_factory.mktemp("net_watch"), ROOT)


@pytest.fixture(scope="module")
def app_url(study_copy, network_log):
    env, _ = network_log
    with running_app(study_copy, log=study_copy.with_suffix(".log"), env=env) as url:
        yield url


@contextlib.contextmanager
def server_log_on_failure(study_copy: Path):
    """A browser timeout says little; the server's last words usually say why."""
    try:
        yield
    except Exception as err:
        raise AssertionError(f"{err}\n--- server log ---\n{log_tail(study_copy.with_suffix('.log'))}") from err


# Every chart as a reader sees it: the drawn SVG or canvas of each vega-embed on screen, and any
# title Vega shortened to fit (it ends it with an ellipsis).
MEASURE_CHARTS = """() => [...document.querySelectorAll('.vega-embed')].filter(e => e.offsetParent !== null)
  .map(e => { const g = e.querySelector('svg.marks, canvas.marks') || e.querySelector('svg, canvas');
              const r = g.getBoundingClientRect();
              const titles = [...e.querySelectorAll('.role-title text, .role-title-text, .role-subtitle text')]
                  .map(t => t.textContent);
              return {w: Math.round(r.width), h: Math.round(r.height), titles}; })"""
MIN_WIDTH, MIN_HEIGHT = 250, 150
# What a narrow window must not do to a page: scroll it sideways (a figure wider than the window
# scrolls inside its own frame instead), squeeze pictures over each other (a gallery of fixed
# columns did at 1024 pixels), or cut a metric's value short. Returns the problems found.
MEASURE_LAYOUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const problems = [];
  if (main.scrollWidth > main.clientWidth + 1)
    problems.push(`the page scrolls sideways: ${main.scrollWidth} px in ${main.clientWidth}`);
  const boxes = [...main.querySelectorAll('[data-testid="stImage"] img')].filter(i => i.offsetParent !== null)
    .map(i => i.getBoundingClientRect());
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
      problems.push(`pictures ${i} and ${j} overlap`); return problems; }
  }
  // A figure cut to "not me…": a metric's value wider than its cell (CSS ellipsis, no tooltip).
  for (const m of main.querySelectorAll('[data-testid="stMetricValue"]')) {
    if (m.offsetParent === null) continue;
    for (const e of [m, ...m.querySelectorAll('*')])
      if (e.scrollWidth > e.clientWidth + 1) {
        problems.push(`a metric's value is cut: "${m.innerText}"`); break; }
  }
  return problems;
}"""
VIEWPORTS = [(1400, 900), (1024, 768)]


def _check_charts(page, where: str) -> int:
    problems = page.evaluate(MEASURE_LAYOUT)
    assert not problems, f"{where}: {problems}"
    charts = page.evaluate(MEASURE_CHARTS)
    for chart in charts:
        assert chart["w"] >= MIN_WIDTH and chart["h"] >= MIN_HEIGHT, f"{where}: a chart drawn at {chart}"
        cut = [t for t in chart["titles"] if t.endswith("\u2026")]
        assert not cut, f"{where}: chart title cut: {cut}"
    return len(charts)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_every_page_renders_in_chromium(app_url, study_copy, viewport, network_log):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Outside pytest's rotating temp folders, so the pictures outlive later test runs.
    shots = Path(os.environ.get("DISFER_SCREENSHOTS") or Path(tempfile.gettempdir()) / "disfer_e2e_screenshots")
    shots = shots / f"{viewport[0]}x{viewport[1]}"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    print(f"\nscreenshots: {shots}")
    seen, charts = {}, {}
    with server_log_on_failure(study_copy), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            # A deep link first, as a bookmark would be: it must go through the router (its nav and
            # titles), never a bare page file (what streamlit does for a folder named pages/).
            page.goto(f"{app_url}/audit")
            _settle(page)
            assert "Label audit" in page.locator('[data-testid="stSidebarNav"]').inner_text()
            pages = router_pages()
            assert TITLED <= set(pages)
            default = next(iter(pages))  # the router's first page is served at the root address
            for path, title in pages.items():
                start = time.monotonic()
                page.goto(app_url if path == default else f"{app_url}/{path}")
                _settle(page)
                heading = page.locator('[data-testid="stMain"] h1').first.inner_text()
                nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
                errors = page.locator(ERROR_BOXES)
                page.screenshot(path=str(shots / f"{path}.png"), full_page=True)
                assert errors.count() == 0, f"{path}: {errors.first.inner_text()}"
                assert page.get_by_text("Page not found").count() == 0, f"{path}: page not found"
                assert heading.strip() == title or path not in TITLED
                assert "Label audit" in nav  # the router's page list, not a scan of app_pages/
                seen[path] = time.monotonic() - start
                charts[path] = _check_charts(page, path)
                for i, tab in enumerate(page.get_by_role("tab").all()):
                    if i == 0:
                        continue  # the first tab is open already
                    name = tab.inner_text().strip()
                    tab.click()
                    _settle(page)
                    page.wait_for_timeout(500)  # a tab's charts are drawn when it is shown
                    page.screenshot(path=str(shots / f"{path}-tab{i}.png"))
                    assert page.locator(ERROR_BOXES).count() == 0, f"{path} / {name}"
                    charts[f"{path} / {name}"] = _check_charts(page, f"{path} / {name}")
        finally:
            browser.close()
    print("seconds per page (load and render in the browser):",
          {p: round(t, 2) for p, t in seen.items()})
    print("charts measured per page and tab:", charts)
    assert {f"{p}.png" for p in pages} <= {p.name for p in shots.iterdir()}
    # the figure pages drew their figures (a page that draws none would pass the size checks)
    assert charts["robustness"] >= 1 and charts["overview"] >= 1
    assert charts["confusion / Error correlation and consistency (Figure 4)"] == 2
    # The server served every page without reaching any other host (no library's telemetry).
    attempts = network_attempts(network_log[1])
    assert attempts == "", f"the app server tried to reach:\n{attempts}"


def test_three_downloads_clicked_at_once_all_arrive(app_url, study_copy, tmp_path):
    """PNG, SVG and CSV of the Robustness page clicked within a second: three files. (A click used to
    rerun the page, which re-registered every button's file; the next click asked for the old one:
    `MediaFileStorageError: Deferred file ... not found`, and nothing arrived.)"""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with server_log_on_failure(study_copy), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 900})
            page.goto(app_url)
            _settle(page)
            page.goto(f"{app_url}/robustness")
            _settle(page)
            arrived = []
            page.on("download", lambda download: arrived.append(download))
            start = time.monotonic()
            for label in ("PNG", "SVG", "CSV"):
                page.locator('[data-testid="stDownloadButton"] button', has_text=label).first.click()
            assert time.monotonic() - start < 1.5, "the three clicks took too long to count as fast"
            # The PNG is rendered on click (vl-convert starts its engine the first time): slow on a busy machine.
            deadline = time.monotonic() + 150
            while len(arrived) < 3 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            saved = {}
            for download in arrived:
                path = tmp_path / download.suggested_filename
                download.save_as(path)
                saved[path.suffix] = path.read_bytes()
        finally:
            browser.close()
    assert sorted(saved) == [".csv", ".png", ".svg"], f"arrived: {sorted(saved)}"
    assert saved[".png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in saved[".svg"][:200]
    assert saved[".csv"].startswith(b"rater,distortion,level,accuracy")
