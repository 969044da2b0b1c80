"""The hosted team dashboard's settings, read from the environment and `.streamlit/secrets.toml`.

Hosted mode is on with `DISFER_HOSTED=1` or `hosted = true` under `[disfer]` in the secrets. It
needs Streamlit's own OpenID Connect sign-in configured under `[auth]` (`redirect_uri` ending in
`/oauth2callback`, `cookie_secret`, `client_id`, `client_secret`, `server_metadata_url`); without
it the app refuses to start. Roles come from the ID token's `roles` claim and the allow-list
`[disfer.roles]` (email = "role"); `unknown_users = "viewer"` under `[disfer]` lets anyone who
signs in view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from disfer.access import ROLES

AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HostedConfig:
    hosted: bool
    auth_problem: str | None = None
    """Why sign-in is not usable (None when it is configured)."""
    roles: dict[str, str] = field(default_factory=dict)
    """The allow-list: lower-case email -> role."""
    unknown_users: str | None = None
    """'viewer' when anyone signed in may view; None: strangers get no access."""

    @property
    def problem(self) -> str | None:
        """The one line to refuse to start with, or None."""
        if self.hosted and self.auth_problem:
            return f"hosted mode needs sign-in: {self.auth_problem}"
        return None


def _section(mapping: Mapping, key: str) -> Mapping:
    value = mapping.get(key) if hasattr(mapping, "get") else None
    return value if isinstance(value, Mapping) else {}


def auth_problem(secrets: Mapping) -> str | None:
    """What is missing from the `[auth]` section, or None when Streamlit can sign people in."""
    auth = _section(secrets, "auth")
    if not auth:
        return "no [auth] section in .streamlit/secrets.toml"
    missing = [k for k in AUTH_KEYS if not str(auth.get(k) or "").strip()]
    if missing:
        return f"[auth] lacks {', '.join(missing)} in .streamlit/secrets.toml"
    if not str(auth["redirect_uri"]).rstrip("/").endswith("/oauth2callback"):
        return "[auth] redirect_uri must end in /oauth2callback"
    return None


def hosted_config(secrets: Mapping, env: Mapping[str, str]) -> HostedConfig:
    """The settings of this server: hosted or local, and who may do what."""
    disfer = _section(secrets, "disfer")
    hosted = str(env.get("DISFER_HOSTED", "")).strip().lower() in _TRUE or disfer.get("hosted") is True
    listed = {str(k).strip().lower(): str(v).strip().lower() for k, v in _section(disfer, "roles").items()}
    bad = sorted(f"{k} = {v!r}" for k, v in listed.items() if v not in ROLES)
    problem = auth_problem(secrets)
    if bad and problem is None:
        problem = f"[disfer.roles] has unknown roles ({', '.join(bad)}); use {', '.join(ROLES)}"
    unknown = str(disfer.get("unknown_users") or "").strip().lower()
    return HostedConfig(hosted=hosted, auth_problem=problem,
                        roles={k: v for k, v in listed.items() if v in ROLES},
                        unknown_users="viewer" if unknown == "viewer" else None)
