"""Hosted mode's settings: on by one switch, refused without a complete sign-in configuration."""

from __future__ import annotations

import pytest

from disfer.hosted import hosted_config

AUTH = {"redirect_uri": "https://disfer.lab.org/oauth2callback", "cookie_secret": "s3cret",
        "client_id": "disfer", "client_secret": "x", "server_metadata_url":
        "https://idp.lab.org/.well-known/openid-configuration"}


def test_local_by_default():
    config = hosted_config({}, {})
    assert not config.hosted and config.problem is None


@pytest.mark.parametrize("secrets,env", [({}, {"DISFER_HOSTED": "1"}),
                                         ({"disfer": {"hosted": True}}, {})])
def test_either_switch_turns_it_on_and_needs_auth(secrets, env):
    config = hosted_config(secrets, env)
    assert config.hosted and config.problem == "hosted mode needs sign-in: no [auth] section in .streamlit/secrets.toml"
    assert hosted_config({**secrets, "auth": AUTH}, env).problem is None


@pytest.mark.parametrize("change,text", [
    ({"cookie_secret": ""}, "lacks cookie_secret"),
    ({"redirect_uri": "https://disfer.lab.org/callback"}, "must end in /oauth2callback"),
])
def test_an_incomplete_auth_section_is_named(change, text):
    config = hosted_config({"auth": {**AUTH, **change}}, {"DISFER_HOSTED": "true"})
    assert text in config.problem


def test_roles_and_strangers():
    secrets = {"auth": AUTH, "disfer": {"hosted": True, "unknown_users": "viewer",
                                        "roles": {"Ann@Lab.org": "Lead", "bob@lab.org": "owner"}}}
    config = hosted_config(secrets, {})
    assert "unknown roles (bob@lab.org = 'owner')" in config.problem
    secrets["disfer"]["roles"].pop("bob@lab.org")
    config = hosted_config(secrets, {})
    assert config.problem is None and config.roles == {"ann@lab.org": "lead"}
    assert config.unknown_users == "viewer"
    assert hosted_config({"auth": AUTH, "disfer": {"unknown_users": "admin"}}, {}).unknown_users is None


def test_make_run_refuses_a_hosted_app_without_sign_in(tmp_path, monkeypatch, capsys):
    from disfer import launch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISFER_HOSTED", "1")
    monkeypatch.setenv("DISFER_DB", str(tmp_path / "never.duckdb"))
    assert launch.main() == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "disfer: error: hosted mode needs sign-in: no [auth] section in .streamlit/secrets.toml"]
    assert not (tmp_path / "never.duckdb").exists()
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items()))
    assert launch.hosted_problem() is None
