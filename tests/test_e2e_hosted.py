"""The hosted team dashboard end to end: a local OpenID Connect provider (oidc-provider-mock) on
loopback, the real app started with secrets pointing at it, and Debian's chromium signing in
through the provider's form as an admin, a curator and a viewer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, running_hosted_app
from app_server import settle as _settle

USERS = {
    "ann": {"sub": "ann", "email": "ann@lab.org", "roles": ["admin"]},
    "cat": {"sub": "cat", "email": "cat@lab.org", "roles": ["curator"]},
    "vic": {"sub": "vic", "email": "vic@lab.org", "roles": ["viewer"]},
}
VIEW_PAGES = {"Overview", "Stimuli", "Robustness", "Confusion", "Agreement", "Label audit", "Saliency"}
EXPECTED_NAV = {"ann": VIEW_PAGES | {"Curation", "Export", "Fine-tuning", "Upload", "Crowd study", "Admin"},
                "cat": VIEW_PAGES | {"Curation"}, "vic": VIEW_PAGES}


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory, demo_store):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("hosted")
    db = folder / "study.duckdb"
    db.write_bytes(Path(demo_store).read_bytes())
    with running_hosted_app(db, list(USERS.values()), folder) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser(hosted_app):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in_page(page) -> str:
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    return page.locator('[data-testid="stMain"]').inner_text()


def _sign_in(browser, url: str, who: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    _sign_in_page(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/authorize**", timeout=60_000)
    page.locator(f'button[name=sub][value="{who}"]').click()
    page.wait_for_url(f"{url}/**", timeout=60_000)
    _settle(page)
    return context, page


def _nav(page) -> set[str]:
    # Each link reads "<icon name>\n<title>": the title is its last line.
    return {text.strip().splitlines()[-1] for text in
            page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()}


def test_before_sign_in_every_route_shows_nothing_of_the_study(hosted_app, browser):
    url, _ = hosted_app
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    for path in ["", "stimuli", "curation", "export", "finetune", "admin", "curation?source=3"]:
        page.goto(f"{url}/{path}")
        text = _sign_in_page(page)
        assert "Sign in" in text and "demo data" not in text
        assert not any(ch.isdigit() for ch in text), text
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    context.close()


def test_the_rating_page_is_public_and_shows_nothing_else(hosted_app, browser):
    """A Prolific participant never signs in: /rate answers with the consent, and nothing of the
    dashboard (no navigation, no sign-in) is drawn around it."""
    url, _ = hosted_app
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/rate?PROLIFIC_PID=5f0c1a2b3c4d5e6f7a8b9c0d&STUDY_ID=s1&SESSION_ID=x1")
    page.get_by_role("button", name="I agree").wait_for(timeout=120_000)
    assert page.get_by_role("button", name="Sign in").count() == 0
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    context.close()


@pytest.mark.parametrize("who", ["ann", "cat", "vic"])
def test_each_role_signs_in_and_sees_its_pages(hosted_app, browser, who):
    url, _ = hosted_app
    context, page = _sign_in(browser, url, who)
    try:
        assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == "Overview"
        assert _nav(page) == EXPECTED_NAV[who]
        assert USERS[who]["email"] in page.locator('[data-testid="stSidebar"]').inner_text()
        page.screenshot(path=str(Path(os.environ.get("DISFER_SCREENSHOTS", "/tmp")) / f"hosted_{who}.png"))
        for path, title in (("curation", "Curation"), ("export", "Export"), ("finetune", "Fine-tuning")):
            if title in EXPECTED_NAV[who]:
                continue
            page.goto(f"{url}/{path}")
            _settle(page)
            headings = page.locator('[data-testid="stMain"] h1').all_inner_texts()
            assert title not in headings, (who, path)
            assert page.get_by_role("button", name="Save decision").count() == 0
    finally:
        context.close()


def test_the_curators_decision_is_recorded_under_their_email(hosted_app, browser):
    url, db = hosted_app
    context, page = _sign_in(browser, url, "cat")
    try:
        page.goto(f"{url}/curation")
        _settle(page)
        page.get_by_role("button", name="Confirm original label").click()
        deadline = time.monotonic() + 60
        while True:
            log = subprocess.run([str(Path(sys.executable).with_name("disfer")), "--db", str(db), "curate", "log",
                                  "--json"], capture_output=True, text=True, timeout=60)
            rows = [json.loads(line) for line in log.stdout.splitlines() if line.strip()]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert [r["curator"] for r in rows] == ["cat@lab.org"], log.stderr
        page.get_by_role("button", name="Sign out").click()
        # Streamlit ends the session at the provider too (its end_session page); back at the app,
        # the visitor is signed out.
        page.wait_for_timeout(2000)
        page.goto(f"{url}/curation")
        text = _sign_in_page(page)
        assert "Sign in" in text and "cat@lab.org" not in text
    finally:
        context.close()
