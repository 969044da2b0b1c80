"""Who may do what: roles, how a signed-in user gets one, and the check every write makes.

Roles, each with everything of the ones before it:
- viewer: the analysis pages;
- curator: plus curation decisions;
- lead: plus resolving disagreements and reviewing;
- admin: plus ingest from uploads, fine-tuning, export, user and study settings.

In hosted mode a user's role is the higher of the ID token's `roles` claim and the secrets'
allow-list (`[disfer.roles]`, email -> role); a user with neither gets no access, or `viewer`
when the admin allows it (`[disfer] unknown_users = "viewer"`). Local use (no sign-in) acts as a
local admin: whoever runs `streamlit run` on their own machine owns the store anyway.

`require(actor, action)` is the server-side check: every function that writes calls it with the
identity of the person asking, so no page, query parameter or replayed widget event lets a role
do more than it may.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from disfer.errors import DisferError

ROLES: tuple[str, ...] = ("viewer", "curator", "lead", "admin")
# The least role each action needs.
ACTIONS: dict[str, str] = {
    "view": "viewer",
    "curate": "curator",
    "resolve": "lead",
    "review": "lead",
    "upload": "admin",
    "finetune": "admin",
    "export": "admin",
    "settings": "admin",
    "audit": "admin",
}


class AccessDenied(DisferError):
    """The signed-in user's role does not allow the action (nothing was written)."""


@dataclass(frozen=True)
class Actor:
    """The person behind a write: a signed-in user, or the local user of a local app or the CLI."""

    email: str
    subject: str
    role: str | None

    @property
    def name(self) -> str:
        """What the store records as the author of a decision."""
        return self.email

    def may(self, action: str) -> bool:
        return may(self.role, action)


def rank(role: str | None) -> int:
    """0 for no access, then 1 (viewer) .. 4 (admin)."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def may(role: str | None, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return rank(role) >= rank(ACTIONS[action])


def require(actor: Actor | None, action: str) -> Actor:
    """The actor, if their role allows `action`; AccessDenied otherwise."""
    if actor is None or not may(actor.role, action):
        who = "nobody signed in" if actor is None else f"{actor.email} ({actor.role or 'no role'})"
        raise AccessDenied(f"{who} may not {action}: it needs the {ACTIONS[action]} role")
    return actor


def role_for(email: str | None, claimed: object, allow_list: Mapping[str, str] | None,
             unknown_users: str | None = None) -> str | None:
    """The role of a signed-in user: the higher of the token's `roles` claim and the allow-list;
    `unknown_users` ('viewer' or None) for a user with neither."""
    claims = [claimed] if isinstance(claimed, str) else list(claimed) if isinstance(claimed, Iterable) else []
    candidates = [r for r in claims if isinstance(r, str) and r in ROLES]
    listed = {str(k).strip().lower(): v for k, v in (allow_list or {}).items()}
    if email and listed.get(email.strip().lower()) in ROLES:
        candidates.append(listed[email.strip().lower()])
    if candidates:
        return max(candidates, key=rank)
    return unknown_users if unknown_users in ("viewer",) else None


LOCAL = Actor(email="local", subject="local", role="admin")


def signature(author: Actor | str | None) -> tuple[str, str]:
    """(who, subject) a write records: a signed-in person's email and subject, or the local
    user's name (or 'local') with subject 'local'."""
    if isinstance(author, Actor):
        return author.email, author.subject
    return ((author or "").strip() or LOCAL.email), LOCAL.subject


def local_actor(name: str | None = None) -> Actor:
    """The person at the keyboard of a local app or the CLI: an admin of their own store, recorded
    under the name they give (curator name) or 'local'."""
    name = (name or "").strip()
    return Actor(email=name or LOCAL.email, subject="local", role="admin")
