"""Where a fine-tuned variant's weights are written: a folder per store, a name per content.

Stores that share a folder share its `models/`, so a checkpoint named after its variant alone let
one store's fine-tune overwrite another's. Each store therefore has an id (a uuid kept in
`study_meta` under `store_id`, made the first time it is needed) and writes under
`<store folder>/models/<store_id>/`. The file's name ends in the first 16 hex digits of its
sha256: a re-run never overwrites the file a registered variant still uses (a run killed between
writing and registering leaves the old variant whole), and two copies of one store, which share
an id, could only ever write identical bytes under one name.

The full sha256 is recorded with the variant (`models.config` key `weights_sha256`), so a loader
can refuse a file that is not the one trained. Every name is a safe name (`disfer.outfiles`), and
the file is written through a temporary file and `os.replace`, never through a symbolic link.
Superseded checkpoints are kept: a copy of the store may still use them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from disfer.outfiles import safe_name, write_bytes
from disfer.store import Store

STORE_ID_KEY = "store_id"
MODELS_FOLDER = "models"
SHA256_KEY = "weights_sha256"   # in models.config of a fine-tuned variant


def store_id(store: Store) -> str:
    """The store's id, made (and kept in study_meta) the first time it is asked for."""
    with store.read() as con:
        row = con.execute("SELECT value FROM study_meta WHERE key = ?", [STORE_ID_KEY]).fetchone()
    if row is None:
        def make(con) -> str:
            # Another process may make one at the same moment: the first to commit wins for both.
            con.execute("INSERT INTO study_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        [STORE_ID_KEY, uuid.uuid4().hex])
            return con.execute("SELECT value FROM study_meta WHERE key = ?", [STORE_ID_KEY]).fetchone()[0]

        row = (store.write_retrying(make),)
    return safe_name(row[0], "store id")


def checkpoint_folder(store: Store) -> Path:
    """`<store folder>/models/<store_id>`: where this store's fine-tunes write their weights."""
    return Path(store.path).parent / MODELS_FOLDER / store_id(store)


@dataclass(frozen=True)
class Checkpoint:
    path: Path        # the file written
    relative: str     # its path relative to the store's folder, as the models row records it
    sha256: str


def checkpoint_bytes(state: dict) -> bytes:
    """A state dict of tensors as safetensors bytes (the format of fine-tuned variants)."""
    from safetensors.torch import save  # torch: only when a checkpoint is written (speed)

    from disfer.models.weights import unshared_state

    return save(unshared_state(state))


def write_checkpoint(store: Store, variant: str, state: dict) -> Checkpoint:
    """Write `variant`'s weights into this store's checkpoint folder; refuses an unsafe name."""
    name = safe_name(variant, "variant name")
    data = checkpoint_bytes(state)
    digest = hashlib.sha256(data).hexdigest()
    relative = Path(MODELS_FOLDER, store_id(store), f"{name}.{digest[:16]}.safetensors")
    path = write_bytes(Path(store.path).parent, relative, data)
    return Checkpoint(path=path, relative=relative.as_posix(), sha256=digest)
