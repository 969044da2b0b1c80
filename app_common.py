"""The dashboard's shared frame: the store handle, the cache keyed on the store's change counter,
the demo banner, the empty-state message, export buttons, face images, the export root, and `md`,
through which every stored text reaches Markdown. Pages import this; nothing in disfer/ does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app_identity import require_page
from disfer.data.stimuli import stimulus_pixels as _stimulus_pixels
from disfer.images import N_PIXELS, SIZE
from disfer.outfiles import markdown_text
from disfer.store import Store, default_db_path

DEMO_BANNER = "demo data: synthetic faces and a simulated crowd"

# What to run to fill an empty store, shown wherever a page has nothing to draw.
HOW_TO_LOAD = """\
**Try it with the demo study** (synthetic faces and a simulated crowd, about a minute):

```
disfer demo
```

**Or load real data:**

```
disfer ingest fer2013 fer2013.csv          # or: disfer ingest folder faces/
disfer build --per-class 12                # 10 versions of each source face
disfer playlists                           # playlists for the crowd study
disfer votes import votes.csv              # the crowd's answers
disfer predict --model minixception        # a model's predictions
```

The dashboard reads `$DISFER_DB` (default `data/disfer.duckdb`); pages refresh when the store changes.
"""


def md(value: object) -> str:
    """Text from the store (a curator, a note, a participant or model name, a label, an error that
    quotes them) for anything Streamlit renders as Markdown: st.markdown, st.caption, st.write,
    st.info/success/warning/error/toast, st.subheader, widget, metric, expander and button labels,
    help texts and image captions. Shown as exactly its text: never an image that fetches a URL, a
    link, HTML or a directive. (Streamlit has no escape of its own; tables and st.text need none.)"""
    return markdown_text(value)


# Where the Export page writes: the user names a folder in it, never a path.
EXPORT_ROOT_ENV = "DISFER_EXPORT_ROOT"


def export_root(store: Store) -> Path:
    """$DISFER_EXPORT_ROOT, or `exports/` beside the store (data/exports/ by default)."""
    configured = os.environ.get(EXPORT_ROOT_ENV, "").strip()
    return Path(configured) if configured else Path(store.path).parent / "exports"


# The server keeps the store open this long after an operation (disfer.store._KeepOpen): its many
# sessions then skip opening the file for each read and write; after a quiet second the CLI can
# take its turn.
KEEP_OPEN_S = 1.0


@st.cache_resource
def _store_for(path: str) -> Store:
    return Store(path, keep_open=KEEP_OPEN_S)


def get_store() -> Store:
    """The store this app shows: $DISFER_DB or data/disfer.duckdb (session may override)."""
    path = st.session_state.get("db_path") or str(default_db_path())
    return _store_for(path)


# The change counter costs a DuckDB connection (tens of ms) per read; a page asks for it several times
# per run. The file's identity, size and mtime (and its WAL's) change with every commit, so the
# counter is re-read only when they move, and at least every COUNTER_TTL seconds in any case.
COUNTER_TTL = 2.0
_counter_memo: dict[str, tuple[tuple, float, tuple[int, int]]] = {}


def _file_state(path: Path) -> tuple:
    state = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            s = os.stat(p)
            state.append((s.st_ino, s.st_size, s.st_mtime_ns))
        except OSError:
            state.append(None)
    return tuple(state)


def _counters(store: Store) -> tuple[int, int]:
    """The store's (change counter, study counter), read from the store only when its files have
    changed."""
    key = str(store.path)
    now = time.monotonic()
    hit = _counter_memo.get(key)
    if hit is not None and now - hit[1] < COUNTER_TTL and hit[0] == _file_state(store.path):
        return hit[2]
    before = _file_state(store.path)
    counters = store.counters()
    after = _file_state(store.path)
    # A commit (or the connection's own checkpoint on close) during the read: remember nothing yet.
    _counter_memo[key] = (after, now if after == before else -COUNTER_TTL, counters)
    return counters


def change_counter(store: Store) -> int:
    """The store's change counter (every write but a soft lock's mark): the cache key."""
    return _counters(store)[0]


def study_key(store: Store, label_kind: str = "original") -> int:
    """The shared Study's cache key: the study counter, which curation's writes leave alone, so a
    decision does not reload the study; with curated labels (read from the ledger) every change."""
    change, study = _counters(store)
    return change if label_kind == "curated" else study


def function_key(fn: Callable) -> str:
    """The cache key of a function: its importable name, 'module.qualname'.

    Only functions of the disfer package whose name leads back to the function itself are taken:
    under `streamlit run` every page's own functions live in `__main__`, so two pages' helpers of
    one name would share a key, and each other's results. (Pages keep no helpers of their own: data
    shaping lives in disfer/.) Anything else is refused with a TypeError.
    """
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or ""
    name = f"{module}.{qualname}"
    if module != "disfer" and not module.startswith("disfer."):
        raise TypeError(f"{name} is not a function of the disfer package: the dashboard caches only "
                        "disfer functions (put the computation in disfer/ and call it from the page)")
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        raise TypeError(f"{name} does not name {fn!r}: only functions reachable by their name are cached")
    return name


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_call(_fn: Callable, fn_key: str, db_path: str, counter: int, study_counter: int, with_study: bool,
                 args: tuple, kwargs: tuple) -> Any:
    kwargs = dict(kwargs)
    if with_study:
        kwargs["study"] = _study(db_path, study_counter, "original")
    return _fn(Store(db_path), *args, **kwargs)


def cached(fn: Callable, *args, with_study: bool = False, study_only: bool = False, **kwargs) -> Any:
    """fn(store, *args, **kwargs) of a disfer function, computed once per change of the store.

    with_study: also pass the store's shared Study (original labels) as `study=`, for functions that
    take one in place of loading it (the review queue, the gallery).
    study_only: fn reads none of curation's tables (events, settings, marks), so it is computed once
    per change of the study counter: a curation decision leaves it cached.
    """
    store = get_store()
    counter = study_key(store) if study_only else change_counter(store)
    return _cached_call(fn, function_key(fn), str(store.path), counter, study_key(store), with_study, args,
                        tuple(sorted(kwargs.items())))


@st.cache_resource(show_spinner="Loading the study's votes and predictions ...", max_entries=4)
def _study(db_path: str, counter: int, label_kind: str):
    # One Study (the integer-coded votes and predictions) per `study_key`, shared uncopied by every
    # analysis on every page; the analysis functions accept it in place of the store.
    from disfer.analysis import load_study

    return load_study(Store(db_path), label_kind=label_kind)


@st.cache_data(show_spinner=False, max_entries=256)
def _analysed_call(_fn: Callable, fn_key: str, db_path: str, counter: int, label_kind: str,
                   args: tuple, kwargs: tuple) -> Any:
    return _fn(_study(db_path, counter, label_kind), *args, **dict(kwargs))


def analysed(fn: Callable, *args, label_kind: str = "original", **kwargs) -> Any:
    """fn(study, *args, **kwargs) of an analysis function, computed once per change of the store.

    label_kind: 'original' (the dataset's labels) or 'curated' (the curators' ground truth).
    """
    store = get_store()
    # Keyed on the Study it reads: an analysis of the original labels outlives curation's writes.
    return _analysed_call(fn, function_key(fn), str(store.path), study_key(store, label_kind), label_kind, args,
                          tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner="Computing the study's figures: accuracy, kappas, McNemar's tests ...",
               max_entries=8)
def _report_call(db_path: str, counter: int, study_counter: int, label_kind: str) -> dict:
    from disfer.analysis import study_report

    # bootstrap=0: no page reads the report's condition CIs (the Robustness page bootstraps its own
    # curve), and 1,000 replicates were 80% of the report's time on a page's first visit.
    return study_report(Store(db_path), label_kind=label_kind, study=_study(db_path, study_counter, label_kind),
                        bootstrap=0)


def study_report(label_kind: str = "original") -> dict:
    """The study's `disfer report --json` document, computed once per change of the store, without
    the bootstrap CIs of its conditions (`ci_low`/`ci_high`; `disfer report` has them)."""
    store = get_store()
    return _report_call(str(store.path), change_counter(store), study_key(store, label_kind), label_kind)


# -- the frame every page shares ------------------------------------------------------------------
def page_header(title: str, caption: str | None = None) -> dict:
    """Title, demo banner and the study's counts (disfer.analysis overview)."""
    require_page("view")
    from disfer.analysis import overview

    st.title(title)
    facts = cached(overview, study_only=True)  # counts of the study: no curation decision changes them
    if facts["study_kind"] == "demo":
        st.warning(DEMO_BANNER, icon=":material/science:")
    if caption:
        st.caption(caption)
    return facts


def empty_state(what: str, how: str = HOW_TO_LOAD) -> None:
    """Say what is missing and how to load it, then end the page run."""
    st.info(f"{what}", icon=":material/info:")
    st.markdown(how)
    st.stop()


def require(facts: dict, *needs: str) -> None:
    """Stop the page with an empty-state message unless the store holds every `need`."""
    if facts["stimuli"] == 0:
        empty_state("This store holds no study yet: no stimuli to show.")
    if "votes" in needs and facts["votes"] == 0:
        empty_state("No crowd votes in this store yet: this page needs them.",
                    "Import the study's answers with `disfer votes import votes.csv` "
                    "(or build the demo with `disfer demo`).")
    if "predictions" in needs and facts["predictions"] == 0:
        empty_state("No model predictions in this store yet: this page needs them.",
                    "Run a model over the stimuli with `disfer predict --model minixception`, or "
                    "import predictions with `disfer predictions import preds.csv --model NAME`.")
    if "votes_or_predictions" in needs and facts["votes"] == 0 and facts["predictions"] == 0:
        empty_state("Neither crowd votes nor model predictions in this store yet.",
                    "Import votes with `disfer votes import votes.csv` or run "
                    "`disfer predict --model minixception`.")


# -- export buttons -------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def _render(spec: str, fmt: str) -> bytes:
    import vl_convert as vlc

    if fmt == "png":
        return vlc.vegalite_to_png(spec, scale=2)
    return vlc.vegalite_to_svg(spec).encode()


@st.cache_data(show_spinner=False, max_entries=512)
def _figure_spec(_builder: Callable, builder_key: str, args: tuple, kwargs: tuple) -> dict:
    # Building an Altair chart costs ~0.1 s; the spec of the same inputs is kept. Not validated
    # against the Vega-Lite schema here: that took as long as the build (the saliency page's maps
    # change with every face), and tests/test_charts.py validates every builder's output.
    return _builder(*args, **dict(kwargs)).to_dict(validate=False)


DOWNLOADS = {"png": ("PNG", "image/png", ":material/image:"),
             "svg": ("SVG", "image/svg+xml", ":material/draw:")}


def _draw(spec: dict, name: str, key: str | None) -> None:
    # Our charts size themselves (autosize pad: width and height are the plot's, labels come on top);
    # without it Streamlit applies `fit` to single and layered views and squeezes labels into them.
    if "autosize" not in spec:
        spec = {**spec, "autosize": {"type": "pad", "contains": "padding"}}
    # In a row that scrolls sideways (wrap=False): a figure wider than the window (a grid of panels
    # at 1024 pixels) scrolls inside its frame instead of being cut at the window's edge.
    st.container(horizontal=True, wrap=False).vega_lite_chart(spec, width="content")
    row = st.container(horizontal=True)
    text = json.dumps(spec)
    for fmt, (label, mime, icon) in DOWNLOADS.items():
        # Rendered on the click (cached). on_click="ignore": a click does not rerun the page. A rerun
        # would re-register every button's file under a new id, and a second button clicked
        # during it would ask for the old one: "MediaFileStorageError: Deferred file ... not found".
        row.download_button(label, data=lambda fmt=fmt: _render(text, fmt), file_name=f"{name}.{fmt}",
                            mime=mime, key=f"{fmt}-{key or name}", icon=icon, on_click="ignore")


def show_figure(name: str, builder: Callable, *args, key: str | None = None, **kwargs) -> None:
    """Draw builder(*args, **kwargs) (a disfer.charts function) with PNG and SVG downloads.

    The chart's spec is cached on the inputs, so a page re-run pays nothing for unchanged charts.
    """
    spec = _figure_spec(builder, function_key(builder), args, tuple(sorted(kwargs.items())))
    _draw(spec, name, key)


def show_chart(chart, name: str, key: str | None = None) -> None:
    """Draw a ready Altair chart with PNG and SVG downloads (show_figure is faster on re-runs)."""
    _draw(chart.to_dict(), name, key)


TABLE_ROWS = 5_000  # more than anyone scrolls; the browser need not receive 350,000 rows


def show_table(table: pd.DataFrame, name: str, key: str | None = None, csv: pd.DataFrame | None = None,
               **kwargs) -> None:
    """A table with a CSV download of all of it (the screen shows the first TABLE_ROWS rows).

    csv: the frame to download when the screen shows a formatted copy (numbers as numbers)."""
    st.dataframe(table.head(TABLE_ROWS), hide_index=True, **kwargs)
    row = st.container(horizontal=True, vertical_alignment="center")
    data = table if csv is None else csv
    row.download_button("CSV", data=lambda: data.to_csv(index=False).encode(),
                        file_name=f"{name}.csv", mime="text/csv", key=f"csv-{key or name}",
                        icon=":material/table:", on_click="ignore")  # no rerun: see _draw
    if len(table) > TABLE_ROWS:
        row.caption(f"first {TABLE_ROWS:,} of {len(table):,} rows shown; the CSV holds them all")


# -- faces ----------------------------------------------------------------------------------------
def stimulus_pixels(stimulus_ids) -> dict[str, bytes]:
    """The stored faces of some stimuli (only those asked for: a gallery page, not the study)."""
    return cached(_stimulus_pixels, tuple(stimulus_ids))


# Grey with a dark cross: "no picture stored".
_MISSING_FACE = np.full((SIZE, SIZE), 200, np.uint8)
np.fill_diagonal(_MISSING_FACE, 90)
np.fill_diagonal(np.fliplr(_MISSING_FACE), 90)


def face_image(pixels: bytes | np.ndarray, scale: int = 3) -> np.ndarray:
    """A stored face (raw bytes or an array), enlarged with hard pixel edges (browsers blur small
    images); a placeholder where the picture is missing or damaged."""
    face = np.frombuffer(pixels, dtype=np.uint8) if isinstance(pixels, bytes | bytearray) \
        else np.asarray(pixels, dtype=np.uint8)
    if face.size != N_PIXELS:
        face = _MISSING_FACE  # a vote-only or damaged stimulus: a placeholder, not a failed page
    return np.repeat(np.repeat(face.reshape(SIZE, SIZE), scale, axis=0), scale, axis=1)


def saliency_image(face: np.ndarray, saliency: np.ndarray, scale: int = 5, alpha: float = 0.55) -> np.ndarray:
    """An RGB picture of the face with a red-yellow saliency map over it (0 = transparent)."""
    sal = np.nan_to_num(np.asarray(saliency, dtype=float))
    sal = np.clip(sal, 0, None)
    peak = sal.max()
    sal = sal / peak if peak > 0 else sal
    grey = np.asarray(face, dtype=float)[..., None].repeat(3, axis=2) / 255.0
    heat = np.stack([np.ones_like(sal), sal, np.zeros_like(sal)], axis=2)  # red -> yellow
    weight = (alpha * sal)[..., None]
    rgb = (grey * (1 - weight) + heat * weight) * 255
    return face_image_rgb(rgb.astype(np.uint8), scale)


def face_image_rgb(rgb: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
