"""Where a fine-tuned variant's weights are written: a folder per store, a name per content.

Stores that share a folder share its `models/`, so a checkpoint named after its variant alone let
one store's fine-tune overwrite another's. Each store therefore has an id (a uuid kept in
`study_meta` under `store_id`, made the first time it is needed) and writes under
`<store folder>/models/<store_id>/` (`disfer.models.store_files`, torch-free, so predict finds its
cached exports there without importing the fine-tuning code). The file's name ends in the first 16 hex digits of its
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
from dataclasses import dataclass
from pathlib import Path

from disfer.models.store_files import MODELS_FOLDER, STORE_ID_KEY, checkpoint_folder, store_id
from disfer.outfiles import safe_name, write_bytes
from disfer.store import Store

__all__ = ["MODELS_FOLDER", "SHA256_KEY", "STORE_ID_KEY", "Checkpoint", "checkpoint_bytes",
           "checkpoint_folder", "store_id", "write_checkpoint"]

SHA256_KEY = "weights_sha256"   # in models.config of a fine-tuned variant


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
