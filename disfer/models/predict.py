"""Run a model over every stimulus of the store it has not yet seen, and keep its predictions.

Predictions are cached by (model, stimulus, weights fingerprint): re-running is free, and new
weights under the same model id (a re-trained variant) are re-run and replace the old rows.
All pixels are read in one query into one array; each batch is one store transaction, so an
interrupted run keeps every finished batch and resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from disfer.emotions import EMOTIONS
from disfer.errors import StoreError
from disfer.images import N_PIXELS, SIZE
from disfer.models import load_model, register_model
from disfer.models import runtimes as R
from disfer.models.store_files import checkpoint_folder
from disfer.progress import Progress, ProgressFn
from disfer.runs import record_run

# Where torch.compile (Inductor) keeps its compiled code, under the store's model folder: by
# default it writes hundreds of MB to <tmp>/torchinductor_<user>, outside any folder the user chose.
INDUCTOR_FOLDER = "inductor"
# Compiling the mini-Xception, or exporting a network for a CPU runtime, costs ~10-30 s the first
# time (seconds once cached); below this many images eager inference finishes sooner.
BUILD_MIN_IMAGES = 4000
# Batches faster than this keep the store open between them (see predict_store), but never for
# longer than HOLD_SECONDS at a time: then the file is let go for at least YIELD_SECONDS, so another
# process (a curator's `disfer curate set`, the dashboard) gets its turn within a second or two.
WARM_BATCH_SECONDS = 1.0
HOLD_SECONDS = 1.0
YIELD_SECONDS = 0.2

log = logging.getLogger(__name__)

_PENDING_SQL = """
SELECT s.stimulus_id, s.pixels FROM stimuli s
WHERE NOT EXISTS (SELECT 1 FROM predictions p
                  WHERE p.model_id = ? AND p.stimulus_id = s.stimulus_id AND p.fingerprint = ?)
ORDER BY s.stimulus_id
"""

_INSERT_SQL = (f"INSERT INTO predictions (model_id, stimulus_id, fingerprint, "
               f"{', '.join(EMOTIONS)}, predicted) SELECT * FROM batch_predictions")


def faces_from_arrow(column: pa.ChunkedArray | pa.Array, ids: list[str] | None = None) -> np.ndarray:
    """(N, 48, 48) uint8 from a column of 2,304-byte blobs, viewing Arrow's buffer when it can."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    arr = arr.cast(pa.large_binary()) if pa.types.is_binary(arr.type) else arr
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != N_PIXELS)
    if arr.null_count or len(bad):
        i = int(bad[0]) if len(bad) else int(np.flatnonzero(arr.is_null().to_numpy(False))[0])
        who = ids[i] if ids else f"row {i}"
        raise StoreError(f"stimulus {who}: pixels are not {N_PIXELS} bytes; the store is damaged")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.reshape(len(arr), SIZE, SIZE)


def pending_stimuli(store, model_id: str, fingerprint: str) -> tuple[list[str], np.ndarray]:
    """Ids and faces of the stimuli without a prediction from these exact weights."""
    with store.read() as con:
        # A fresh cursor: the relation API needs a connection with no pending result.
        table = con.cursor().sql(_PENDING_SQL, params=[model_id, fingerprint]).to_arrow_table()
    ids = table.column("stimulus_id").to_pylist()
    return ids, faces_from_arrow(table.column("pixels"), ids)


def _batch_table(model_id: str, fingerprint: str, ids: list[str], probs: np.ndarray) -> pa.Table:
    n = len(ids)
    columns = {"model_id": pa.array([model_id] * n), "stimulus_id": pa.array(ids),
               "fingerprint": pa.array([fingerprint] * n)}
    columns.update({e: pa.array(probs[:, j].astype(np.float64)) for j, e in enumerate(EMOTIONS)})
    columns["predicted"] = pa.array(np.asarray(EMOTIONS, dtype=object)[probs.argmax(axis=1)])
    return pa.table(columns)


def _write_batch(store, model, table: pa.Table, first: bool) -> int:
    with store.write() as con:
        if first:
            register_model(con, model)
            # Rows from other weights under this id are stale; they are all being re-run.
            con.execute("DELETE FROM predictions WHERE model_id = ? AND fingerprint IS DISTINCT FROM ?",
                        [model.model_id, model.fingerprint])
        con.register("batch_predictions", table)
        con.execute(_INSERT_SQL)
        con.unregister("batch_predictions")
    return table.num_rows


def _writer_thread(model) -> bool:
    return model.device.type == "cuda"


class _Inline:
    """The executor interface, running each task at once in the calling thread."""

    def submit(self, fn, *args):
        future: Future = Future()
        future.set_result(fn(*args))
        return future


class _Holder:
    """Keeps the store open between fast batches, letting go of it regularly for other processes:
    after HOLD_SECONDS held, the file is free for at least YIELD_SECONDS (usually the next forward
    pass, so a run with ordinary batches loses no time)."""

    def __init__(self, store):
        self.store, self.wanted, self._held = store, False, None
        self._since = self._freed = 0.0

    def let_go_if_due(self) -> None:
        if self._held is not None and time.monotonic() - self._since > HOLD_SECONDS:
            self.release()

    def take_turn(self) -> None:
        """Hold the store (when wanted) before the next write."""
        if not self.wanted or self._held is not None:
            return
        time.sleep(max(0.0, self._freed + YIELD_SECONDS - time.monotonic()))
        self._held = self.store.read()
        self._held.__enter__()
        self._since = time.monotonic()

    def release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            held.__exit__(None, None, None)
            self._freed = time.monotonic()


def start_runtime(store, model, runtime: str, n: int) -> str:
    """Switch `model` to the runtime asked for (`runtimes.RUNTIME_CHOICES`), returning the one used.

    'auto' takes the measured-fastest CPU runtime when its export is cached beside the store or
    the run is large enough to pay for exporting, else torch; if that export cannot be made or
    trusted, it says so and runs on torch. A runtime asked for by name is used or is an error.
    """
    chosen = R.choose_runtime(runtime, model)
    if chosen == R.TORCH:
        return chosen
    if runtime == R.AUTO and n < BUILD_MIN_IMAGES and R.cached_export(store, model) is None:
        return R.TORCH
    try:
        model.enable_runtime(chosen, R.export_folder(store))
    except Exception as err:
        if runtime != R.AUTO:
            raise
        log.warning("%s: %s unavailable (%s); running on torch", model.model_id, chosen,
                    str(err).splitlines()[0][:200])
        return R.TORCH
    return chosen


def predict_store(store, model_id: str, device: str = "auto", batch: int | None = None,
                  progress: ProgressFn | None = None, compile: bool | None = None,
                  weights_path=None, runtime: str = R.AUTO) -> int:
    """Predict every stimulus `model_id` has not seen; returns how many were predicted.

    `batch`: images per store transaction (and per forward pass on torch); None picks the model's
    default for the device (`cpu_batch` / `gpu_batch`). `runtime`: see `start_runtime` (on the
    CPU 'auto' runs the small networks in `runtimes.CPU_DEFAULT_RUNTIME`). `compile`, on torch:
    None lets the model decide (torch.compile for the mini-Xception on large CPU runs).
    """
    if batch is not None and batch < 1:
        raise ValueError("batch must be at least 1")
    started = time.perf_counter()
    model = load_model(model_id, device=device, store=store, weights_path=weights_path)
    R.choose_runtime(runtime, model)  # an impossible runtime is refused before any work
    batch = batch or model.default_batch()
    fingerprint = model.fingerprint
    ids, faces = pending_stimuli(store, model_id, fingerprint)
    if not ids:
        return 0
    model.load()  # load (and check) the weights before any write
    tick = time.perf_counter()
    runtime = start_runtime(store, model, runtime, len(ids))
    if runtime != R.TORCH:
        compile = False
    elif compile is None:
        compile = model.device.type == "cpu" and len(ids) >= BUILD_MIN_IMAGES
    if compile:
        # Read by Inductor when it first compiles (at the first batch); a user's own setting stands.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(checkpoint_folder(store) / INDUCTOR_FOLDER))
        compile = model.enable_compile()
    setup_seconds = time.perf_counter() - tick  # compiling, or loading (or exporting) the runtime's graph
    with Progress(len(ids), desc=f"predict {model_id}", callback=progress, unit="img") as bar, \
            contextlib.ExitStack() as stack:
        # On a GPU one writer thread stores batch i while batch i + 1 is computed (torch and
        # DuckDB both release the GIL), in order. On the CPU the forward pass already keeps every
        # core busy, and a writer thread would only stall torch's thread team, so writes are inline.
        writer = (stack.enter_context(ThreadPoolExecutor(max_workers=1))
                  if _writer_thread(model) else _Inline())
        pending = None
        holder = _Holder(store)
        stack.callback(holder.release)
        for start in range(0, len(ids), batch):
            holder.let_go_if_due()  # the forward pass below is the other processes' window
            tick = time.perf_counter()
            probs = model.predict_proba(faces[start:start + batch], batch=batch)
            if start == 0 and time.perf_counter() - tick < WARM_BATCH_SECONDS:
                # Opening the store file per transaction costs tens of ms (and a checkpoint on
                # close). For fast batches one extra connection keeps the database open, so each
                # batch's transaction costs a few ms. Slow models skip this and leave the file
                # free between batches for the dashboard.
                holder.wanted = True
            table = _batch_table(model_id, fingerprint, ids[start:start + batch], probs)
            if pending is not None:
                bar.update(pending.result())
            holder.take_turn()
            pending = writer.submit(_write_batch, store, model, table, start == 0)
        bar.update(pending.result())
    seconds = time.perf_counter() - started
    with store.write() as con:
        record_run(con, "predict",
                   {"model_id": model_id, "device": str(model.device), "batch": batch,
                    "runtime": runtime, "compiled": bool(compile), "fingerprint": fingerprint},
                   {"n": len(ids), "seconds": round(seconds, 3), "setup_seconds": round(setup_seconds, 3),
                    "images_per_s": round(len(ids) / max(seconds, 1e-9), 1)})
    return len(ids)
