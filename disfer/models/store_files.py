"""The store's own model folder, `<store folder>/models/<store_id>/`: fine-tuned checkpoints
(`disfer.finetune.checkpoints`) and exported networks for the CPU runtimes
(`disfer.models.runtimes`) live there. Torch-free and light, so `disfer predict` finds its cached
export without importing the fine-tuning code (seconds of imports).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from disfer.outfiles import safe_name

if TYPE_CHECKING:
    from disfer.store import Store

STORE_ID_KEY = "store_id"
MODELS_FOLDER = "models"


def store_id(store: Store, create: bool = True) -> str | None:
    """The store's id, made (and kept in study_meta) the first time it is asked for; with
    `create=False`, None for a store that has none yet (nothing is written)."""
    with store.read() as con:
        row = con.execute("SELECT value FROM study_meta WHERE key = ?", [STORE_ID_KEY]).fetchone()
    if row is None and not create:
        return None
    if row is None:
        def make(con) -> str:
            # Another process may make one at the same moment: the first to commit wins for both.
            con.execute("INSERT INTO study_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        [STORE_ID_KEY, uuid.uuid4().hex])
            return con.execute("SELECT value FROM study_meta WHERE key = ?", [STORE_ID_KEY]).fetchone()[0]

        row = (store.write_retrying(make),)
    return safe_name(row[0], "store id")


def checkpoint_folder(store: Store, create: bool = True) -> Path | None:
    """`<store folder>/models/<store_id>`: where this store's fine-tunes write their weights (and
    its exported networks, under `exports/`). With `create=False`, None for a store without an id
    yet (then it has no such folder; nothing is written)."""
    known = store_id(store, create)
    return Path(store.path).parent / MODELS_FOLDER / known if known is not None else None
