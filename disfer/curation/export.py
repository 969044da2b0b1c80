"""Export of the curated dataset, with a manifest and a dataset card.

Formats (each written into one folder OUT, next to `manifest.json` and `dataset_card.md`):
- `fer2013-csv`: `fer2013.csv` in Kaggle's layout (emotion,pixels,Usage) with the curated primary
  label as the FER-2013 code, so any FER-2013 training script reads it unchanged.
- `ferplus`: `ferplus.csv`, FERPlus-style: Usage, Image name, the study's vote counts in FERPlus's
  column order (contempt, unknown and NF are 0: our study offers 7 emotions), then the soft label
  `soft_<emotion>`, the primary `label`, `status` and `pixels`. Vote counts are per image, as in
  FERPlus: each row has the votes cast on exactly the image it names. With `pool_versions`
  (`--pool-versions`) a source's original row has the votes on all its versions together (a
  distorted row, with --include-distorted, keeps its own); the card and the manifest
  (`vote_counts`) say which.
- `folders`: `<Usage>/<primary emotion>/<stimulus_id>.png` plus `labels.csv` (multi-label view).
- `parquet`: `dataset.parquet`, one row per face: multi-hot and soft labels (lists in EMOTIONS
  order), labels, the original label, provenance (dataset, original_index, original_name, split,
  stimulus_id, distortion, level), curation status, curator, time and the raw 48x48 pixels.

Which sources: every source with pixels and a label, except those whose status is filtered out
(default: all statuses but `excluded`; `uncurated` sources keep their original label; a `disputed`
source carries its provisional label, see disfer.curation). Excluded sources, when asked for, are
written by `parquet` only (with no label); the other formats need a label per face and skip them.

Confined: every path is built from safe names (`disfer.outfiles.safe_name`: a stored split such as
`../../elsewhere` is refused, not followed), every file is written through `disfer.outfiles`, and
`force` replaces only a previous export of ours (its manifest lists every file with its sha256);
a folder with anything else in it is refused, never deleted. Stored text in the dataset card is
escaped (`markdown_text`): a curator's name cannot become an image or a link.

Deterministic: the same store gives the same bytes. Rows are ordered by source_id, distortion,
level; the card's `date` is the time of the latest curation event (not the time of export), and
nothing else in the output depends on the clock or the machine.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from disfer import ledger, outfiles
from disfer.access import Actor, require
from disfer.data.ferplus import FERPLUS_EMOTION_COLUMNS, FERPLUS_HEADER
from disfer.emotions import EMOTIONS, FER2013_CODES
from disfer.errors import ConfigError
from disfer.images import SIZE, from_blob
from disfer.outfiles import markdown_text, safe_name
from disfer.progress import ProgressFn, bar
from disfer.runs import record_run
from disfer.store import Store

DEFAULT_STATUSES: tuple[str, ...] = tuple(s for s in ledger.VIEW_STATUSES if s != "excluded")
EXPORT_VERSION = 2  # 2: FERPlus vote counts per image by default (1 pooled the versions)
# A 0..255 -> "0".."255" table: formatting 2,304 pixels per face by lookup, not by str() each.
_PIXEL_TEXT = np.array([str(i) for i in range(256)], dtype=object)


def _pixels_text(blob: bytes) -> str:
    return " ".join(_PIXEL_TEXT[np.frombuffer(blob, dtype=np.uint8)])


def soft_vector(labels: list[str], weights: list[float] | None) -> list[float]:
    """A probability over EMOTIONS: the weights, or uniform over the labels."""
    vec = [0.0] * len(EMOTIONS)
    if not labels:
        return vec
    w = weights if weights is not None else [1.0 / len(labels)] * len(labels)
    for label, value in zip(labels, w, strict=True):
        vec[EMOTIONS.index(label)] = float(value)
    return vec


def curated_status_counts(store: Store) -> dict[str, int]:
    """Curated sources per ground-truth status, every status a curated source can have (those of
    ledger.VIEW_STATUSES but 'uncurated': confirmed, relabeled, ambiguous, excluded, disputed), in
    that order, 0 where none."""
    counts = Counter(ledger.current_ground_truth(store)["status"])
    return {s: int(counts.get(s, 0)) for s in ledger.VIEW_STATUSES if s != "uncurated"}


def curated_rows(store: Store, include_distorted: bool = False,
                 statuses: list[str] | tuple[str, ...] | None = None) -> tuple[pd.DataFrame, dict]:
    """The faces to export with their curated labels, and facts for the card."""
    statuses = _check_statuses(statuses)
    with store.read() as con:
        sources = con.execute(
            "SELECT s.source_id, s.dataset, s.original_index, s.original_name, s.split, s.original_label, "
            "coalesce(s.pixels, o.pixels) AS pixels FROM sources s "
            "LEFT JOIN stimuli o ON o.source_id = s.source_id AND o.distortion = 'original' AND o.level = 0 "
            "WHERE coalesce(s.pixels, o.pixels) IS NOT NULL ORDER BY s.source_id").df()
        distorted = con.execute(
            "SELECT stimulus_id, source_id, distortion, level, pixels FROM stimuli "
            "WHERE distortion <> 'original' ORDER BY source_id, distortion, level").df() \
            if include_distorted else None
    gt = ledger.current_ground_truth(store).set_index("source_id")
    records, skipped_unlabeled = [], 0
    for s in sources.itertuples(index=False):
        sid = int(s.source_id)
        original = s.original_label if isinstance(s.original_label, str) else None
        if sid in gt.index:
            g = gt.loc[sid]
            status, labels, weights = g["status"], list(g["labels"]), g["weights"]
            curator, decided_at = g["curator"], g["decided_at"]
        else:
            status, labels, weights, curator, decided_at = "uncurated", [original] if original else [], None, None, None
        if status not in statuses:
            continue
        if status != "excluded" and not labels:
            skipped_unlabeled += 1  # no original label and nobody curated it: nothing to train on
            continue
        records.append({
            "source_id": sid, "stimulus_id": f"{sid}-original-0", "distortion": "original", "level": 0,
            "dataset": s.dataset, "original_index": int(s.original_index),
            "original_name": s.original_name if isinstance(s.original_name, str) else None,
            "split": s.split if isinstance(s.split, str) else "Training",
            "original_label": original, "status": status, "labels": labels,
            "weights": None if weights is None else [float(w) for w in weights],
            "label": ledger.primary_label(labels, weights), "curator": curator,
            "decided_at": decided_at, "pixels": bytes(s.pixels),
        })
    rows = pd.DataFrame(records)
    if include_distorted and len(rows) and len(distorted):
        base = rows.drop(columns=["stimulus_id", "distortion", "level", "pixels"])
        extra = distorted.merge(base, on="source_id", how="inner")
        extra["pixels"] = extra["pixels"].map(bytes)
        rows = pd.concat([rows, extra[rows.columns]], ignore_index=True)
        rows["_order"] = (rows["distortion"] != "original").astype(int)
        rows = rows.sort_values(["source_id", "_order", "distortion", "level"], kind="stable")
        rows = rows.drop(columns="_order").reset_index(drop=True)
    return rows, {"skipped_unlabeled": skipped_unlabeled, "statuses": list(statuses)}


def _check_statuses(statuses) -> tuple[str, ...]:
    if not statuses:
        return DEFAULT_STATUSES
    bad = [s for s in statuses if s not in ledger.VIEW_STATUSES]
    if bad:
        raise ConfigError(f"unknown status {bad[0]!r} (expected some of {', '.join(ledger.VIEW_STATUSES)})")
    return tuple(s for s in ledger.VIEW_STATUSES if s in set(statuses))


def _study_vote_counts(store: Store) -> tuple[dict, dict]:
    """Study votes per stimulus and pooled per source: {id: Counter(emotion -> n)}."""
    with store.read() as con:
        df = con.execute(
            "SELECT st.source_id, v.stimulus_id, v.emotion, count(*) AS n FROM votes v "
            "JOIN stimuli st USING (stimulus_id) JOIN participants p USING (participant_id) "
            "WHERE p.crowd = 'study' GROUP BY ALL").df()
    per_stim: dict[str, Counter] = {}
    per_source: dict[int, Counter] = {}
    for r in df.itertuples(index=False):
        per_stim.setdefault(r.stimulus_id, Counter())[r.emotion] += int(r.n)
        per_source.setdefault(int(r.source_id), Counter())[r.emotion] += int(r.n)
    return per_stim, per_source


# -- writers: each returns the relative paths it wrote --------------------------------------------
def _write_csv(out: Path, name: str, header: list[str], rows) -> None:
    with outfiles.writing(out, name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _write_fer2013(rows: pd.DataFrame, out: Path, store: Store, progress) -> list[str]:
    body = ((FER2013_CODES.index(r.label), _pixels_text(r.pixels), r.split)
            for r in bar(rows.itertuples(index=False), len(rows), "fer2013.csv", progress))
    _write_csv(out, "fer2013.csv", ["emotion", "pixels", "Usage"], body)
    return ["fer2013.csv"]


VOTE_COUNTS = {
    "per_image": "per image: each row has the study's votes on exactly that image",
    "pooled_versions": "pooled over versions: a source's original row has the study's votes on all its "
                       "versions together; a distorted row its own",
}


def _write_ferplus(rows: pd.DataFrame, out: Path, store: Store, progress, pool_versions: bool = False) -> list[str]:
    per_stim, per_source = _study_vote_counts(store)
    header = [*FERPLUS_HEADER, *(f"soft_{e}" for e in EMOTIONS),
              "label", "status", "pixels"]

    def body():
        for r in bar(rows.itertuples(index=False), len(rows), "ferplus.csv", progress):
            counts = per_source.get(r.source_id, Counter()) if pool_versions and r.distortion == "original" \
                else per_stim.get(r.stimulus_id, Counter())
            soft = soft_vector(r.labels, r.weights)
            yield [r.split, f"{r.stimulus_id}.png", *(counts.get(c, 0) for c in FERPLUS_EMOTION_COLUMNS),
                   *(f"{v:.6g}" for v in soft), r.label, r.status, _pixels_text(r.pixels)]

    _write_csv(out, "ferplus.csv", header, body())
    return ["ferplus.csv"]


def image_paths(rows: pd.DataFrame) -> list[str]:
    """`<split>/<label>/<stimulus_id>.png` of every row, each part a safe name: ConfigError naming
    the source and the value when stored text is not one (checked before anything is written)."""
    return [f"{safe_name(r.split, f'source {r.source_id}: split')}/"
            f"{safe_name(r.label, f'source {r.source_id}: label')}/"
            f"{safe_name(r.stimulus_id, f'source {r.source_id}: stimulus id')}.png"
            for r in rows.itertuples(index=False)]


def _write_folders(rows: pd.DataFrame, out: Path, store: Store, progress) -> list[str]:
    from PIL import Image

    paths = image_paths(rows)
    written, table = [], []
    for rel, r in zip(bar(paths, len(rows), "images", progress), rows.itertuples(index=False), strict=True):
        png = io.BytesIO()
        Image.fromarray(from_blob(r.pixels), mode="L").save(png, format="PNG")
        outfiles.write_bytes(out, rel, png.getvalue())
        written.append(rel)
        table.append([rel, r.source_id, r.stimulus_id, r.label, ",".join(r.labels),
                      "" if r.weights is None else ",".join(f"{w:g}" for w in r.weights),
                      r.status, r.original_label or ""])
    _write_csv(out, "labels.csv", ["path", "source_id", "stimulus_id", "label", "labels", "weights",
                                    "status", "original_label"], table)
    return written + ["labels.csv"]


def _write_parquet(rows: pd.DataFrame, out: Path, store: Store, progress) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def col(name):
        # pandas turns a missing string into NaN; Arrow wants None.
        values = list(rows[name]) if len(rows) else []
        return [None if not isinstance(v, (list, bytes, str)) and v is not None and pd.isna(v) else v
                for v in values]

    soft = [soft_vector(lab, w) for lab, w in zip(col("labels"), col("weights"), strict=True)]
    multi = [[int(e in lab) for e in EMOTIONS] for lab in col("labels")]
    decided = [None if v is None or pd.isna(v) else pd.Timestamp(v).to_pydatetime() for v in col("decided_at")]
    table = pa.table({
        "source_id": pa.array(col("source_id"), pa.int32()),
        "stimulus_id": pa.array(col("stimulus_id"), pa.string()),
        "distortion": pa.array(col("distortion"), pa.string()),
        "level": pa.array(col("level"), pa.int32()),
        "label": pa.array(col("label"), pa.string()),
        "labels": pa.array(col("labels"), pa.list_(pa.string())),
        "multi_hot": pa.array(multi, pa.list_(pa.int8())),
        "soft_label": pa.array(soft, pa.list_(pa.float64())),
        "weights": pa.array(col("weights"), pa.list_(pa.float64())),
        "original_label": pa.array(col("original_label"), pa.string()),
        "status": pa.array(col("status"), pa.string()),
        "curator": pa.array(col("curator"), pa.string()),
        "decided_at": pa.array(decided, pa.timestamp("us")),
        "dataset": pa.array(col("dataset"), pa.string()),
        "original_index": pa.array(col("original_index"), pa.int64()),
        "original_name": pa.array(col("original_name"), pa.string()),
        "split": pa.array(col("split"), pa.string()),
        "pixels": pa.array(col("pixels"), pa.binary()),
    }).replace_schema_metadata({"disfer.emotions": ",".join(EMOTIONS),
                                "disfer.pixels": f"{SIZE}x{SIZE} uint8 grey, row-major"})
    with outfiles.writing(out, "dataset.parquet") as fh:
        pq.write_table(table, fh, compression="zstd")
    return ["dataset.parquet"]


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its writer and what a user is told about it."""

    write: Callable[[pd.DataFrame, Path, Store, ProgressFn | None], list[str]]
    """write(rows, out, store, progress) writes the format's files into `out` and returns their
    paths relative to it."""
    description: str
    """One sentence for a user choosing a format."""
    main_file: str | None = None
    """The one file that holds the whole dataset, worth offering as a download; None when the
    dataset is a tree of files."""
    check: Callable[[pd.DataFrame], object] | None = None
    """check(rows) raises ConfigError, before anything is written, when stored text in the rows
    cannot become the paths the writer builds from it."""


# The one list of formats: `FORMATS`, the CLI's --format choices and the dashboard's picker read it.
WRITERS: dict[str, ExportFormat] = {
    "fer2013-csv": ExportFormat(
        _write_fer2013, "Kaggle's emotion,pixels,Usage with the curated primary label: any FER-2013 "
        "script reads it.", "fer2013.csv"),
    "ferplus": ExportFormat(
        _write_ferplus, "FERPlus-style vote counts (the study's crowd, per image) and soft-label columns, "
        "with the pixels.", "ferplus.csv"),
    "folders": ExportFormat(
        _write_folders, "One PNG per face under <Usage>/<emotion>/, and labels.csv with the multi-label "
        "view.", check=image_paths),
    "parquet": ExportFormat(
        _write_parquet, "Multi-hot and soft labels, original label, provenance, curation status and "
        "pixels.", "dataset.parquet"),
}
FORMATS: tuple[str, ...] = tuple(WRITERS)


# -- manifest and card ------------------------------------------------------------------------------
def _facts(store: Store, rows: pd.DataFrame) -> dict:
    with store.read() as con:
        before = dict(con.execute(
            "SELECT original_label, count(*) FROM sources WHERE original_label IS NOT NULL "
            "AND (pixels IS NOT NULL OR source_id IN (SELECT source_id FROM stimuli)) GROUP BY 1").fetchall())
        curators = dict(con.execute("SELECT curator, count(*) FROM curation_events GROUP BY 1").fetchall())
        latest = con.execute("SELECT max(decided_at) FROM curation_events").fetchone()[0]
    src = rows[rows["distortion"] == "original"] if len(rows) else rows
    after = Counter(src["label"]) if len(src) else Counter()
    changed = int((src["label"] != src["original_label"]).sum()) if len(src) else 0
    return {
        "date": latest.isoformat(sep=" ") if latest is not None else None,
        "counts_before": {e: int(before.get(e, 0)) for e in EMOTIONS},
        "counts_after": {e: int(after.get(e, 0)) for e in EMOTIONS},
        "labels_changed": changed,
        "status_counts": {k: int(v) for k, v in sorted(Counter(src["status"]).items())} if len(src) else {},
        "multi_label_sources": int((src["labels"].map(len) > 1).sum()) if len(src) else 0,
        "curators": {k: int(v) for k, v in sorted(curators.items())},
        "sources": int(len(src)),
    }


def _card(fmt: str, m: dict) -> str:
    """The dataset card, in Markdown; stored text (curators, statuses) escaped as text."""
    curators = ", ".join(f"{markdown_text(k)} ({v})" for k, v in m["curators"].items())
    lines = [f"# DisFER Studio curated dataset ({fmt})", "",
             f"- date (latest curation event): {m['date'] or 'no curation events'}",
             f"- store schema version: {m['schema_version']}; export format version {m['export_version']}",
             f"- sources: {m['sources']}; rows: {m['rows']} (distorted versions included: "
             f"{m['include_distorted']})",
             f"- statuses exported: {', '.join(map(markdown_text, m['statuses']))}",
             f"- labels changed from the original: {m['labels_changed']}; multi-label sources: "
             f"{m['multi_label_sources']}; skipped for want of a label: {m['skipped_unlabeled']}",
             f"- curators (events): {curators or 'none'}",
             *([f"- vote counts: {VOTE_COUNTS[m['vote_counts']]}"] if "vote_counts" in m else []),
             "", "| emotion | before (original labels, all sources) | after (exported, primary label) |",
             "|---|---|---|"]
    lines += [f"| {e} | {m['counts_before'][e]} | {m['counts_after'][e]} |" for e in EMOTIONS]
    lines += ["", "| status | sources |", "|---|---|"]
    lines += [f"| {markdown_text(k)} | {v} |" for k, v in m["status_counts"].items()]
    lines += ["", "Checksums (sha256) of every file are in manifest.json.", ""]
    return "\n".join(lines)


# -- entry point --------------------------------------------------------------------------------------
def export_dataset(store: Store, fmt: str, out: str | Path, include_distorted: bool = False,
                   statuses: list[str] | None = None, force: bool = False,
                   progress: ProgressFn | None = None, pool_versions: bool = False,
                   actor: Actor | str | None = None) -> dict:
    """Write the curated dataset in `fmt` into folder `out`; returns the manifest (also written).

    pool_versions: FERPlus only; a source's original row counts the votes on all its versions
    (default: the votes on that image only). Refused for the other formats, which have no counts.

    The folder appears whole or not at all: files are written to a sibling temporary folder that
    is swapped in at the end. `out` must be new or empty; `force` also lets it replace exactly a
    previous export of ours (every file its manifest lists, unchanged, and nothing else).

    actor: who exports (a signed-in person needs the admin role); the export is recorded as a run
    signed by them, unless the store is read-only (an archived study still exports).
    """
    if isinstance(actor, Actor):
        require(actor, "export")
    if fmt not in WRITERS:
        raise ConfigError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if pool_versions and fmt != "ferplus":
        raise ConfigError(f"pooling votes over versions is a ferplus option; {fmt} has no vote counts")
    out = Path(out)
    statuses = _check_statuses(statuses)
    outfiles.replaceable(out, force)  # refused before any work; checked again at the swap
    rows, info = curated_rows(store, include_distorted, statuses)
    if fmt != "parquet" and len(rows):
        # Only Parquet can say "excluded, no label"; the other formats need one label per face.
        unlabeled = rows["label"].isna()
        info["skipped_unlabeled"] += int((unlabeled & (rows["distortion"] == "original")).sum())
        rows = rows[~unlabeled].reset_index(drop=True)
    if WRITERS[fmt].check is not None:
        WRITERS[fmt].check(rows)
    tmp = outfiles.new_partial_folder(out)
    try:
        write = WRITERS[fmt].write
        counts = {}
        if fmt == "ferplus":
            write = partial(write, pool_versions=pool_versions)
            counts["vote_counts"] = "pooled_versions" if pool_versions else "per_image"
        files = write(rows, tmp, store, progress)
        manifest = {"format": fmt, "export_version": EXPORT_VERSION, "schema_version": store.schema_version(),
                    **counts, "include_distorted": bool(include_distorted), "rows": int(len(rows)),
                    "emotions": list(EMOTIONS), "fer2013_codes": list(FER2013_CODES),
                    **info, **_facts(store, rows)}
        outfiles.write_text(tmp, "dataset_card.md", _card(fmt, manifest))
        files.append("dataset_card.md")
        manifest["files"] = {rel: {"sha256": outfiles.sha256(tmp / rel), "bytes": (tmp / rel).stat().st_size}
                             for rel in sorted(files)}
        buf = io.StringIO()
        json.dump(manifest, buf, indent=2, sort_keys=True)
        outfiles.write_text(tmp, outfiles.MANIFEST, buf.getvalue() + "\n")
        outfiles.swap_in(tmp, out, force)
    except BaseException:
        outfiles.remove_partial_folder(tmp)
        raise
    if store.writable:
        with store.write() as con:
            record_run(con, "export", {"format": fmt, "out": str(out), "include_distorted": bool(include_distorted),
                                       "statuses": list(statuses), "pool_versions": bool(pool_versions)},
                       {"rows": manifest["rows"]}, actor)
    return manifest


def verify_export(out: str | Path) -> list[str]:
    """Files whose checksum no longer matches the manifest (empty list: the export is intact)."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return [rel for rel, f in manifest["files"].items()
            if not (out / rel).is_file() or outfiles.sha256(out / rel) != f["sha256"]]
