"""The offline demo study: synthetic faces and a simulated crowd, built through the real pipeline.

FER-2013 cannot ship with the project, so `build_demo` draws its own faces (disfer.demo.faces),
writes them as a Kaggle-format fer2013.csv with about one label in five deliberately wrong, and then
runs exactly what a user runs on real data: ingest, build, playlists, votes import (the votes come
from the simulated crowd, disfer.demo.crowd) and predict with every model whose weights are here.
Nothing in the store is written by hand except the study_meta lines that say it is a demo.

The demo is built in a hidden temporary store beside the target and moved into place
(`os.replace`) only once complete: a demo that fails, or is killed, leaves no store at the target
(and an empty store there as it was), never a half-built study that `make run` would open.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from disfer.emotions import FER2013_CODES
from disfer.errors import ConfigError, StoreError
from disfer.progress import ProgressFn
from disfer.runs import record_run
from disfer.store import Store

DEMO_DESCRIPTION = "demo data: synthetic faces and a simulated crowd"
DATASET = "demo"
PER_CLASS = 12            # the paper's design: 12 faces per emotion, 84 sources
PLAYLISTS, PLAYLIST_SIZE = 21, 40
WRONG_LABEL_RATE = 0.2    # about one source in five carries a wrong "original label"
# A quick fine-tune (the paper's protocol, on the distortion that hurts most), small enough to keep
# the whole demo within a minute on two cores: it shows a fine-tuned variant, not a trained model.
QUICK_FINETUNE = {"protocol": "paper", "distortion": "gaussian_noise", "epochs": 1, "batches": 3}


@dataclass
class DemoResult:
    """What build_demo did, step by step (counts as returned by the pipeline's own functions)."""

    sources: int = 0
    stimuli: int = 0
    playlists: int = 0
    votes: int = 0
    predictions: dict[str, int] = field(default_factory=dict)
    finetuned: str | None = None                                   # the variant's model id
    skipped_models: dict[str, str] = field(default_factory=dict)   # model -> why it did not run
    wrong_label_sources: list[int] = field(default_factory=list)   # the audit's answer key
    seconds: float = 0.0


def write_fer2013_csv(path: Path, faces: np.ndarray, labels: list[str], usage: str = "PublicTest") -> Path:
    """Faces and labels in the Kaggle fer2013.csv format (emotion code, 2,304 pixels, Usage)."""
    codes = [FER2013_CODES.index(label) for label in labels]
    pixels = [" ".join(map(str, face.reshape(-1).tolist())) for face in faces]
    pd.DataFrame({"emotion": codes, "pixels": pixels, "Usage": usage}).to_csv(path, index=False)
    return path


def _stage(progress: ProgressFn | None, start: float, end: float, text: str) -> ProgressFn | None:
    """A sub-step's progress callback mapped onto [start, end] of the whole demo build."""
    if progress is None:
        return None
    progress(start, text)
    return lambda fraction, _text="": progress(start + (end - start) * fraction, text)


def _empty(store: Store) -> bool:
    with store.read() as con:
        return con.execute("SELECT count(*) FROM sources").fetchall()[0][0] == 0


def build_demo(store: Store, seed: int = 0, progress: ProgressFn | None = None,
               log: Callable[[str], None] | None = None, finetune: bool = True) -> DemoResult:
    """Fill an empty (or missing) store with the demo study; `log` receives one line per step.

    `finetune`: also run a quick fine-tune of the mini-Xception (QUICK_FINETUNE); its weights go to
    the store's checkpoint folder under `<store folder>/models/`, as every variant's do.
    """
    from disfer.models.store_files import checkpoint_folder

    started = time.monotonic()
    target = Path(os.path.realpath(store.path)) if Path(store.path).is_symlink() else Path(store.path)
    if target.exists() and not _empty(store):
        raise ConfigError(f"{store.path}: the store already holds data; the demo needs an empty store "
                          f"(give a new file with --db)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"{target}: cannot create the store's folder: {err.strerror or err}") from None
    partial = Store(target.with_name(f".{target.name}.demo-{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"),
                    lock_timeout=store.lock_timeout)
    models = target.parent / "models"
    had_models = models.exists()
    checkpoints = None
    try:
        checkpoints = checkpoint_folder(partial)   # made now, so a failure knows what to remove
        result = _build(partial, seed, progress, log or (lambda line: None), finetune)
        _move_into_place(partial, target, store)
    except BaseException:
        _discard(partial.path)
        if checkpoints is not None:
            shutil.rmtree(checkpoints, ignore_errors=True)   # this partial store's own folder
        if not had_models:
            try:
                models.rmdir()   # made for this demo alone, and empty again
            except OSError:
                pass
        raise
    if progress is not None:
        progress(1.0, "demo study ready")
    result.seconds = time.monotonic() - started
    (log or (lambda line: None))(
        f"demo study ready in {result.seconds:.1f} s: {result.sources} sources, {result.stimuli} stimuli, "
        f"{result.votes:,} votes, predictions of {', '.join(result.predictions) or 'no model'}")
    return result


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _discard(path: Path) -> None:
    for p in (path, _wal(path)):
        p.unlink(missing_ok=True)


def _move_into_place(partial: Store, target: Path, store: Store) -> None:
    """Replace the (missing or empty) target by the finished demo store, whole."""
    with partial.read() as con:
        con.execute("CHECKPOINT")   # everything in the file itself, nothing left in a WAL
    if _wal(partial.path).exists():
        raise StoreError(f"{partial.path}: the demo store kept a write-ahead log; not moved into place")
    if target.exists() and not _empty(store):
        raise ConfigError(f"{store.path}: data arrived in the store while the demo was built; "
                          f"the demo was not moved into place")
    # A log left by an earlier (empty or deleted) store at this path would be replayed into ours.
    _wal(target).unlink(missing_ok=True)
    os.replace(partial.path, target)


def _build(store: Store, seed: int, progress: ProgressFn | None, say: Callable[[str], None],
           finetune: bool) -> DemoResult:
    """Every step of the demo, into `store` (a new, empty store)."""
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013
    from disfer.data.playlists import make_playlists
    from disfer.data.votes import import_votes
    from disfer.demo.crowd import mislabel, simulate_votes
    from disfer.demo.faces import generate_faces

    result = DemoResult()
    rng = np.random.default_rng(seed)

    say(f"drawing {PER_CLASS * 7} synthetic faces ({PER_CLASS} per emotion, seed {seed})")
    _stage(progress, 0.0, 0.05, "drawing synthetic faces")
    faces = generate_faces(PER_CLASS, seed)
    labels = mislabel(faces.emotion, WRONG_LABEL_RATE, rng)
    wrong_rows = [i for i, (a, b) in enumerate(zip(labels, faces.emotion, strict=True)) if a != b]

    with tempfile.TemporaryDirectory(prefix="disfer-demo-") as tmp:
        folder = Path(tmp)
        csv_path = write_fer2013_csv(folder / "fer2013_demo.csv", faces.faces, labels)
        say(f"ingest {csv_path.name} ({len(wrong_rows)} of its labels deliberately wrong)")
        result.sources = ingest_fer2013(store, csv_path, _stage(progress, 0.05, 0.1, "ingesting faces"),
                                        dataset=DATASET)
        say(f"build the study: {PER_CLASS} faces per class x 10 versions")
        result.stimuli = build_study(store, per_class=PER_CLASS, seed=seed,
                                     progress=_stage(progress, 0.1, 0.25, "rendering stimuli"))
        say(f"make {PLAYLISTS} playlists of {PLAYLIST_SIZE}")
        _stage(progress, 0.25, 0.3, "making playlists")
        playlists = make_playlists(store, PLAYLISTS, PLAYLIST_SIZE, seed)
        result.playlists = int(playlists["playlist_id"].nunique())

        _stage(progress, 0.3, 0.4, "simulating the crowd")
        with store.read() as con:
            stimuli = con.execute("SELECT t.stimulus_id, t.source_id, t.distortion, t.level, s.original_index"
                                  " FROM stimuli t JOIN sources s USING (source_id)").df()
        # The crowd sees each face's true mixture, found through the CSV row it was ingested from.
        row_of = dict(zip(stimuli["source_id"], stimuli["original_index"], strict=True))
        wrong_set = set(wrong_rows)
        result.wrong_label_sources = sorted(int(s) for s, row in row_of.items() if row in wrong_set)
        mixtures = {int(r.source_id): faces.mixture[int(r.original_index)] for r in stimuli.itertuples()}
        votes, people = simulate_votes(stimuli, mixtures, playlists, seed)
        votes_path = folder / "votes.csv"
        people_path = folder / "participants.csv"
        votes.to_csv(votes_path, index=False)
        people[["participant_id", "age", "gender"]].to_csv(people_path, index=False)
        say(f"import {len(votes):,} simulated votes of {len(people):,} participants")
        _stage(progress, 0.4, 0.5, "importing votes")
        result.votes = import_votes(store, votes_path, participants_path=people_path)

    _predict_all(store, result, _stage(progress, 0.5, 0.75 if finetune else 1.0, "predicting"), say)
    if finetune and "minixception" in result.predictions:
        _quick_finetune(store, seed, result, _stage(progress, 0.75, 1.0, "quick fine-tune"), say)
    _mark_demo(store, seed, result)
    return result


def _predict_all(store: Store, result: DemoResult, progress: ProgressFn | None, say) -> None:
    """Real predictions of every model whose weights are present (the offline mini-Xception at least)."""
    from disfer.models.predict import predict_store
    from disfer.models.registry import list_models

    infos = [m for m in list_models() if m.parent_id is None]
    span = 1.0 / max(len(infos), 1)
    for k, info in enumerate(infos):
        if progress is not None:
            progress(k * span, f"predicting with {info.name}")
        if not info.weights_present:
            result.skipped_models[info.name] = f"weights not found ({info.hint})"
            say(f"skip {info.name}: weights not found")
            continue
        say(f"predict with {info.name}")
        stage = _stage(progress, k * span, (k + 1) * span, f"predicting with {info.name}")
        result.predictions[info.name] = predict_store(store, info.name, progress=stage)


def _quick_finetune(store: Store, seed: int, result: DemoResult, progress: ProgressFn | None, say) -> None:
    from disfer.finetune import finetune

    settings = dict(QUICK_FINETUNE)
    say(f"quick fine-tune of minixception on {settings['distortion']} ({settings['epochs']} short epoch)")
    result.finetuned = finetune(store, "minixception", seed=seed, progress=progress, **settings)
    with store.read() as con:
        result.predictions[result.finetuned] = con.execute(
            "SELECT count(*) FROM predictions WHERE model_id = ?", [result.finetuned]).fetchall()[0][0]


def _mark_demo(store: Store, seed: int, result: DemoResult) -> None:
    config = {"seed": seed, "per_class": PER_CLASS, "playlists": PLAYLISTS, "playlist_size": PLAYLIST_SIZE,
              "wrong_label_rate": WRONG_LABEL_RATE,
              "quick_finetune": QUICK_FINETUNE if result.finetuned else None}
    summary = {"sources": result.sources, "stimuli": result.stimuli, "votes": result.votes,
               "wrong_label_sources": result.wrong_label_sources, "predictions": result.predictions}

    def write(con) -> None:
        for key, value in (("study_kind", "demo"), ("description", DEMO_DESCRIPTION),
                           ("demo", json.dumps({**config, **summary}))):
            con.execute("INSERT OR REPLACE INTO study_meta (key, value) VALUES (?, ?)", [key, value])
        record_run(con, "demo", config, summary)

    store.write_retrying(write)
