"""Files people upload to the hosted dashboard (votes, participants, predictions, a zip of face
images, model weights): checked for size, kept under the store's own folder with a name we choose,
imported through the same all-or-nothing readers as the CLI (nothing is written unless the whole
file is valid), never executed or unpickled, and signed by the uploader.

Images come as a zip of `<split>/<emotion>/<image>`: every member name is checked (no absolute
path, no `..`, only safe names) and the sizes it declares are bounded before anything is
unpacked. Weights come as safetensors only (a header of JSON and raw tensors, nothing to run); a
pickled `.pth` is refused."""

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
KINDS: tuple[str, ...] = ("votes", "predictions", "images", "weights")
MAX_ZIP_MEMBERS = 50_000
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # what a zip may unpack to (a zip bomb declares far more)


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
    suffix = {"images": "zip", "weights": "safetensors"}.get(kind, "csv")
    kept = [write_bytes(folder, f"{stamp}-{kind}.{suffix}", data)]
    try:
        if kind == "images":
            rows = _ingest_zip(store, kept[0], file_name)
        elif kind == "weights":
            rows = _check_safetensors(kept[0], file_name)
        elif kind == "votes":
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


def _ingest_zip(store: Store, path: Path, file_name: str) -> int:
    """Unpack a zip of `<split>/<emotion>/<image>` into a scratch folder beside it and ingest that."""
    import shutil
    import tempfile
    import zipfile

    from disfer.data.ingest import ingest_folder
    from disfer.outfiles import safe_name

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InputError(file_name, "not a zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise InputError(file_name, f"{len(members):,} files, more than {MAX_ZIP_MEMBERS:,}")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise InputError(file_name, f"unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
        scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=".unpacked-"))
        try:
            for member in members:
                parts = member.filename.split("/")
                if len(parts) != 3 or member.filename.startswith("/"):
                    raise InputError(file_name, f"{member.filename[:80]!r}: expected <split>/<emotion>/<image>")
                for part in parts:
                    safe_name(part, f"zip member {member.filename[:80]!r}: name")
                target = scratch.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as dst:
                    # Copy at most the declared size plus one byte: a member lying about its size
                    # cannot unpack more than the bound checked above.
                    data = src.read(member.file_size + 1)
                    if len(data) > member.file_size:
                        raise InputError(file_name, f"{member.filename[:80]!r}: larger than it declares")
                    dst.write(data)
            return ingest_folder(store, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _check_safetensors(path: Path, file_name: str) -> int:
    """A safetensors file's tensors, counted by reading its header (no code runs, nothing is
    pickled); anything else is refused."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return len(list(fh.keys()))
    except Exception:  # a pickle, a truncated header, random bytes
        raise InputError(file_name, "not a safetensors weights file (only .safetensors is accepted: "
                                    "a pickled .pth could run code)") from None
