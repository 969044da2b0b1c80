"""Uploads in hosted mode: admins only, size-limited, validated whole before anything is written,
kept under the store's folder with our own name, signed by the uploader."""

from __future__ import annotations

import pytest
from test_bad_input import _snapshot

from disfer.access import AccessDenied, Actor
from disfer.errors import DisferError
from disfer.uploads import MAX_UPLOAD_BYTES, receive_upload, uploads_folder

ADMIN = Actor("adm@lab.org", "sub-adm", "admin")


def _votes(store) -> bytes:
    with store.read() as con:
        ids = [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY 1 LIMIT 3").fetchall()]
    return ("participant_id,stimulus_id,emotion\n" + "".join(f"p1,{s},fear\n" for s in ids)).encode()


def test_an_admin_uploads_votes_signed_and_kept_in_the_store_folder(built_study):
    assert receive_upload(built_study, ADMIN, "votes", "../../../etc/votes.csv", _votes(built_study)) == 3
    kept = list(uploads_folder(built_study).iterdir())
    assert len(kept) == 1 and kept[0].name.endswith("-votes.csv") and kept[0].parent.parent == built_study.path.parent
    with built_study.read() as con:
        assert con.execute("SELECT actor, subject, kind FROM runs WHERE kind = 'upload'").fetchall() == [
            ("adm@lab.org", "sub-adm", "upload")]
        assert con.execute("SELECT count(*) FROM votes").fetchone()[0] == 3


@pytest.mark.parametrize("role", ["viewer", "curator", "lead"])
def test_only_admins_upload(built_study, role):
    before = _snapshot(built_study.path)
    with pytest.raises(AccessDenied):
        receive_upload(built_study, Actor("x@lab.org", "s", role), "votes", "v.csv", _votes(built_study))
    assert _snapshot(built_study.path) == before and not uploads_folder(built_study).exists()


def test_a_bad_or_huge_file_writes_nothing(built_study):
    before = _snapshot(built_study.path)
    with pytest.raises(DisferError, match="unknown emotion"):
        receive_upload(built_study, ADMIN, "votes", "v.csv", _votes(built_study).replace(b"fear", b"bored"))
    with pytest.raises(DisferError, match="upload limit"):
        receive_upload(built_study, ADMIN, "predictions", "p.csv", b"x" * (MAX_UPLOAD_BYTES + 1), model_id="m")
    assert _snapshot(built_study.path) == before
    assert list(uploads_folder(built_study).glob("*")) == []
