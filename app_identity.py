"""Who is using the dashboard. Local use (no configuration) is one person at their own machine: an
admin of their own store, recording decisions under the name they type. The hosted team
dashboard (`DISFER_HOSTED=1` or `hosted = true` under `[disfer]` in the secrets) signs people in
with Streamlit's OpenID Connect (`st.login`) and gives each a role (disfer.access).

The router calls `gate()` before anything of the study is drawn, on every route; pages ask
`current_actor()` for the identity they pass to every write, which checks the role again.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from disfer.access import AccessDenied, Actor, local_actor, may, require, role_for
from disfer.hosted import HostedConfig, hosted_config
from disfer.outfiles import markdown_text

CURATOR_KEY = "curator"  # session key of the name a local curator types


def config() -> HostedConfig:
    try:
        secrets = st.secrets.to_dict()
    except StreamlitSecretNotFoundError:  # no secrets.toml: local use
        secrets = {}
    return hosted_config(secrets, os.environ)


def _signed_in(cfg: HostedConfig) -> Actor | None:
    # .get: st.user has no is_logged_in before sign-in is configured where it looks (AppTest).
    if not st.user.get("is_logged_in", False):
        return None
    email = str(st.user.get("email") or "").strip()
    subject = str(st.user.get("sub") or "").strip()
    role = role_for(email, st.user.get("roles"), cfg.roles, cfg.unknown_users) if email else None
    return Actor(email=email, subject=subject, role=role)


def current_actor() -> Actor | None:
    """The person behind this session: the signed-in user in hosted mode (None before sign-in),
    else the local user under the curator name typed in this session (or 'local')."""
    cfg = config()
    if cfg.hosted:
        return _signed_in(cfg)
    return local_actor(st.session_state.get(CURATOR_KEY))


def hosted() -> bool:
    return config().hosted


def _sign_in_page() -> None:
    cfg = config()
    st.title("DisFER Studio")
    if cfg.problem:
        st.error(markdown_text(cfg.problem))
        return
    actor = _signed_in(cfg)
    if actor is None:
        st.write("The team's study dashboard. Sign in to open it.")
        st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
        return
    st.error("You are signed in, but this dashboard has not given you a role yet. Ask its admin to add you.")
    st.text(actor.email)
    st.button("Sign out", on_click=st.logout)


RATE_PAGE = "app_pages/rate.py"  # the crowd study's participant page, public at /rate


def rate_page() -> st.Page:
    """The participant page (app_pages/rate.py): in every navigation, listed in none. Participants
    reach it by its address; it draws nothing of the dashboard around it."""
    return st.Page(str(Path(__file__).parent / RATE_PAGE), title="Facial expressions study",
                   url_path="rate", visibility="hidden")


def gate() -> Actor:
    """In hosted mode, unless someone with a role is signed in, serve the sign-in page on every
    route and end the run; in local use, return the local user at once.

    The study's participant page (/rate) is the one other page served there, without sign-in.
    The sign-in page is served through st.navigation (the only page registered), never by
    stopping before it: a run that registers no navigation makes Streamlit fall back to serving
    the files in app_pages/ by their URLs, which would run a page without this gate.
    """
    cfg = config()
    if not cfg.hosted:
        return local_actor(st.session_state.get(CURATOR_KEY))
    actor = None if cfg.problem else _signed_in(cfg)
    if actor is None or actor.role is None:
        # /rate stays public: participants of the crowd study never sign in.
        st.navigation([st.Page(_sign_in_page, title="Sign in", icon=":material/login:", default=True),
                       rate_page()], position="hidden").run()
        st.stop()
    return actor


def sidebar_identity(actor: Actor) -> None:
    """Who is signed in, their role, and the way out (hosted mode)."""
    with st.sidebar:
        st.text(f"{actor.email}\n{actor.role}")
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")


def allowed(actor: Actor, action: str) -> bool:
    return may(actor.role, action)


def require_page(action: str) -> Actor:
    """First line of every page (page_header asks for 'view'; pages that write for more): the
    router hides a page from a role that may not use it, and this stops the run should the page be
    reached anyway (a stale link, a replayed event, a page run without the router)."""
    actor = current_actor()
    try:
        return require(actor, action)
    except AccessDenied as err:
        st.error(markdown_text(str(err)))  # it quotes the provider's email: text, not Markdown
        st.stop()
