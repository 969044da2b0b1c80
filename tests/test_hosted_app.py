"""The hosted team dashboard, headless (AppTest sets st.user): nothing of the study before sign-in,
the navigation built from the role, every write checked again and signed with the identity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_curation import add_sources

from disfer import ledger
from disfer.outfiles import markdown_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTH = {"redirect_uri": "http://127.0.0.1:9/oauth2callback", "cookie_secret": "c" * 32,
        "client_id": "disfer", "client_secret": "secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
VIEW_PAGES = ["overview", "stimuli", "robustness", "confusion", "agreement", "audit", "saliency"]
# Which of the writing pages each role reaches (the role table).
REACHES = {"viewer": set(), "curator": {"curation"}, "lead": {"curation"},
           "admin": {"curation", "export", "finetune", "upload", "admin", "study"}}


@pytest.fixture
def study(store):
    add_sources(store, ["happiness", "anger", "sadness"],
                votes={0: ["happiness"] * 10, 1: ["surprise"] * 10, 2: ["sadness"] * 6 + ["fear"] * 4})
    return store


def app(db: Path, monkeypatch, user: dict | None, auth: dict | None = AUTH) -> AppTest:
    monkeypatch.setenv("DISFER_DB", str(db))
    monkeypatch.setenv("DISFER_HOSTED", "1")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    if auth is not None:
        at.secrets["auth"] = auth
    at.user = user if user is not None else {"is_logged_in": False}
    return at


def person(role: str) -> dict:
    return {"is_logged_in": True, "email": f"{role}@lab.org", "sub": f"sub-{role}", "roles": [role]}


def shown_text(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info",
                                  "warning", "success", "error") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_hosted_without_sign_in_configured_refuses_in_one_line(study, monkeypatch):
    at = app(study.path, monkeypatch, None, auth=None).run()
    # Shown as text: the Markdown source is the escaped line.
    assert [e.value for e in at.error] == [markdown_text("hosted mode needs sign-in: no [auth] section in "
                                                         ".streamlit/secrets.toml")]
    assert not at.metric and not at.dataframe and not at.image


@pytest.mark.parametrize("page", [None, *VIEW_PAGES, "curation", "export", "finetune", "upload", "admin", "study"])
def test_before_sign_in_no_route_shows_the_study(study, monkeypatch, page):
    at = app(study.path, monkeypatch, None)
    if page is not None:
        at.query_params["source"] = "2"
    at.run()
    if page is not None:
        try:
            at.switch_page(f"app_pages/{page}.py").run()
        except ValueError:  # no navigation is even built before sign-in
            pass
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not at.image and not at.exception
    text = shown_text(at)
    assert "anger" not in text and "happiness" not in text and "demo" not in text


@pytest.mark.parametrize("role", list(REACHES))
def test_each_role_reaches_exactly_its_pages(study, monkeypatch, role):
    for page in ["curation", "export", "finetune", "upload", "admin", "study"]:
        at = app(study.path, monkeypatch, person(role)).run()
        assert not at.exception, at.exception
        assert [b.label for b in at.sidebar.button][-1] == "Sign out"
        try:
            at.switch_page(f"app_pages/{page}.py").run()
        except ValueError:  # not in this role's navigation at all
            assert page not in REACHES[role]
            continue
        titles = [t.value for t in at.title]
        if page in REACHES[role]:
            assert titles and not at.exception, (role, page, [e.value for e in at.error])
        else:  # reached anyway (a stale link): refused before anything is drawn
            assert not titles and any("may not" in e.value for e in at.error), (role, page)


def test_a_stranger_gets_no_access_unless_the_admin_allows_viewers(study, monkeypatch):
    stranger = {"is_logged_in": True, "email": "who@else.org", "sub": "sub-who"}
    at = app(study.path, monkeypatch, stranger).run()
    assert "has not given you a role" in shown_text(at) and not at.metric
    at = app(study.path, monkeypatch, stranger)
    at.secrets["disfer"] = {"unknown_users": "viewer"}
    at.run()
    assert [t.value for t in at.title] == ["Overview"]


def test_the_curators_decision_is_signed_with_their_identity(study, monkeypatch):
    at = app(study.path, monkeypatch, person("curator")).run()
    at.switch_page("app_pages/curation.py").run()
    assert "curator" not in [w.key for w in at.text_input]  # the name cannot be typed in hosted mode
    next(b for b in at.button if b.label == "Confirm original label").click().run()
    assert not at.exception
    log = ledger.event_log(study)
    assert list(zip(log["curator"], log["subject"], strict=True)) == [("curator@lab.org", "sub-curator")]


def test_a_viewer_cannot_write_even_by_calling_the_write(study):
    from disfer.access import AccessDenied, Actor

    with pytest.raises(AccessDenied):
        ledger.record_decision(study, 1, ["anger"], None, "relabeled", Actor("v@lab.org", "sub-v", "viewer"))
    assert ledger.event_log(study).empty
