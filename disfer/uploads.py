"""Files people upload to the hosted dashboard (votes, participants, predictions): checked for size,
kept under the store's own folder with a name we choose, imported through the same all-or-nothing
readers as the CLI (nothing is written unless the whole file is valid), never executed or
unpickled, and signed by the uploader."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from disfer.access import Actor, require
from disfer.data.votes import import_votes
from disfer.errors import InputError
from disfer.models.predictions_import import import_predictions
from disfer.outfiles import write_bytes
from disfer.runs import record_run
from disfer.store import Store

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # as .streamlit/config.toml's maxUploadSize
KINDS: tuple[str, ...] = ("votes", "predictions")


def uploads_folder(store: Store) -> Path:
    """Where uploads are kept: `uploads/` beside the store file."""
    return store.path.parent / "uploads"


def receive_upload(store: Store, actor: Actor, kind: str, file_name: str, data: bytes,
                   participants: bytes | None = None, model_id: str | None = None) -> int:
    """Keep and import one uploaded file; returns the rows imported. `file_name` is only recorded
    (as text): the stored name is ours (`<time>-<kind>.csv`)."""
    require(actor, "upload")
    if kind not in KINDS:
        raise ValueError(f"unknown upload kind {kind!r}")
    for name, blob in ((file_name, data), ("participants file", participants)):
        if blob is not None and len(blob) > MAX_UPLOAD_BYTES:
            raise InputError(name, f"{len(blob):,} bytes, more than the upload limit of {MAX_UPLOAD_BYTES:,}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = uploads_folder(store)
    kept = [write_bytes(folder, f"{stamp}-{kind}.csv", data)]
    try:
        if kind == "votes":
            extra = None
            if participants is not None:
                kept.append(write_bytes(folder, f"{stamp}-participants.csv", participants))
                extra = kept[-1]
            rows = import_votes(store, kept[0], extra)
        else:
            rows = import_predictions(store, kept[0], model_id or "")
    except BaseException:
        for path in kept:  # a refused file is not kept
            path.unlink(missing_ok=True)
        raise
    with store.write() as con:
        record_run(con, "upload", {"kind": kind, "file_name": file_name, "bytes": len(data),
                                   "stored": [p.name for p in kept], "model_id": model_id},
                   {"rows": rows}, actor)
    return rows
