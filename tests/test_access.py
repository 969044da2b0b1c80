"""Roles: the higher of token and allow-list, nothing for strangers, and the server-side check."""

from __future__ import annotations

import pytest

from disfer.access import ACTIONS, ROLES, AccessDenied, Actor, may, require, role_for


@pytest.mark.parametrize("claimed,listed,unknown,expected", [
    (["curator"], {}, None, "curator"),
    (["viewer"], {"ann@lab.org": "lead"}, None, "lead"),          # the allow-list is higher
    (["admin"], {"ann@lab.org": "viewer"}, None, "admin"),        # the token is higher
    ("curator", {}, None, "curator"),                             # a single string claim
    ([], {"ANN@lab.org": "curator"}, None, "curator"),            # emails compare case-blind
    (["superuser", 3], {}, None, None),                           # unknown claims give nothing
    (None, {}, None, None),                                       # a stranger: no access
    (None, {}, "viewer", "viewer"),                               # ... unless the admin allows it
    (None, {}, "admin", None),                                    # strangers never get more
])
def test_role_for(claimed, listed, unknown, expected):
    assert role_for("ann@lab.org", claimed, listed, unknown) == expected


# Written out by hand from the issue: which role may do what.
ALLOWED = {
    "viewer": {"view"},
    "curator": {"view", "curate"},
    "lead": {"view", "curate", "resolve", "review"},
    "admin": set(ACTIONS),
}


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_role_may_exactly_its_actions(role, action):
    allowed = action in ALLOWED.get(role, set())
    assert may(role, action) is allowed
    actor = Actor("x@lab.org", "sub-x", role)
    if allowed:
        assert require(actor, action) is actor
    else:
        with pytest.raises(AccessDenied, match=f"may not {action}"):
            require(actor, action)


def test_nobody_signed_in_may_do_nothing():
    with pytest.raises(AccessDenied, match="nobody signed in"):
        require(None, "view")
