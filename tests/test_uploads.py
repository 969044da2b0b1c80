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


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _png() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.full((48, 48), 90, np.uint8))[1].tobytes()


def test_a_zip_of_faces_is_ingested(store):
    n = receive_upload(store, ADMIN, "images", "faces.zip",
                       _zip({"Training/happy/a.png": _png(), "Training/sad/b.png": _png()}))
    assert n == 2
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM sources").fetchone()[0] == 2
    assert [p.suffix for p in uploads_folder(store).iterdir()] == [".zip"]  # the scratch folder is gone


@pytest.mark.parametrize("name", ["../../evil/happy/a.png", "/abs/happy/a.png", "Training/happy/../../a.png",
                                  "Training/.hidden/a.png", "a.png"])
def test_a_zip_slip_is_refused_and_nothing_lands(store, tmp_path, name):
    before = _snapshot(store.path)
    with pytest.raises(DisferError):
        receive_upload(store, ADMIN, "images", "faces.zip", _zip({name: _png()}))
    assert _snapshot(store.path) == before
    assert not (store.path.parent.parent / "evil").exists() and not (store.path.parent / "evil").exists()
    assert list(uploads_folder(store).iterdir()) == []


def test_weights_only_as_safetensors(store, tmp_path):
    import pickle

    import numpy as np
    from safetensors.numpy import save

    assert receive_upload(store, ADMIN, "weights", "w.safetensors", save({"conv.weight": np.zeros((2, 2), np.float32)})) == 1
    payload = pickle.dumps({"x": 1})  # a pickle is refused unopened, never loaded
    with pytest.raises(DisferError, match="only .safetensors"):
        receive_upload(store, ADMIN, "weights", "w.pth", payload)
    assert [p.suffix for p in uploads_folder(store).iterdir()] == [".safetensors"]
