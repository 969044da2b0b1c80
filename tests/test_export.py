"""Export of the curated dataset: formats, manifest, determinism and the FER-2013 round trip."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from test_curation import add_sources

from disfer import ledger
from disfer.cli import main
from disfer.curation.export import FORMATS, WRITERS, curated_status_counts, export_dataset, verify_export
from disfer.emotions import EMOTIONS, FER2013_CODES
from disfer.errors import ConfigError
from disfer.outfiles import markdown_text
from disfer.store import Store


@pytest.fixture
def curated(store):
    """5 sources: 1 confirmed, 2 relabeled, 3 ambiguous (soft), 4 excluded, 5 uncurated."""
    add_sources(store, ["happiness", "anger", "sadness", "neutral", "fear"],
                votes={0: ["happiness"] * 10, 2: ["sadness"] * 5 + ["fear"] * 5})
    ledger.record_decision(store, 1, ["happiness"], None, "confirmed", "ann")
    ledger.record_decision(store, 2, ["disgust"], None, "relabeled", "ann")
    ledger.record_decision(store, 3, ["fear", "sadness"], [0.6, 0.4], "ambiguous", "bob")
    ledger.record_decision(store, 4, [], None, "excluded", "bob", note="cartoon")
    return store


def store_pixels(store) -> dict[int, bytes]:
    with store.read() as con:
        return {int(s): bytes(p) for s, p in con.execute("SELECT source_id, pixels FROM sources").fetchall()}


def test_fer2013_csv_has_curated_labels_and_the_stored_pixels(curated, tmp_path):
    manifest = export_dataset(curated, "fer2013-csv", tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / "fer2013.csv")
    assert list(df.columns) == ["emotion", "pixels", "Usage"]
    # Sources 1, 2, 3, 5 (4 is excluded), in source order; 3's primary label is fear (weight 0.6).
    assert [FER2013_CODES[c] for c in df["emotion"]] == ["happiness", "disgust", "fear", "fear"]
    pixels = store_pixels(curated)
    for sid, text in zip([1, 2, 3, 5], df["pixels"], strict=True):
        assert np.array(text.split(), dtype=np.uint8).tobytes() == pixels[sid]
    assert set(df["Usage"]) == {"PublicTest"}
    assert manifest["rows"] == 4 and manifest["labels_changed"] == 2
    assert manifest["counts_before"]["happiness"] == 1 and manifest["counts_before"]["neutral"] == 1
    assert manifest["counts_after"]["fear"] == 2 and manifest["counts_after"]["neutral"] == 0
    assert manifest["curators"] == {"ann": 2, "bob": 2}
    assert manifest["status_counts"] == {"ambiguous": 1, "confirmed": 1, "relabeled": 1, "uncurated": 1}


def test_manifest_checksums_and_date_come_from_the_store(curated, tmp_path):
    out = tmp_path / "out"
    manifest = export_dataset(curated, "parquet", out)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for rel, f in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == f["sha256"]
    assert set(manifest["files"]) == {"dataset.parquet", "dataset_card.md"}
    assert manifest["schema_version"] == curated.schema_version()
    latest = ledger.event_log(curated)["decided_at"].max()
    assert manifest["date"] == latest.isoformat(sep=" ")
    assert verify_export(out) == []
    (out / "dataset_card.md").write_text("tampered")
    assert verify_export(out) == ["dataset_card.md"]


def test_formats_are_the_writers_each_described_with_its_main_file(curated, tmp_path):
    assert FORMATS == tuple(WRITERS) == ("fer2013-csv", "ferplus", "folders", "parquet")
    for fmt, spec in WRITERS.items():
        assert spec.description.strip(), fmt
        written = set(export_dataset(curated, fmt, tmp_path / fmt)["files"]) - {"dataset_card.md"}
        if spec.main_file is None:  # a tree of files: nothing single to download
            assert len(written) > 1, fmt
        else:
            assert written == {spec.main_file}, fmt


def test_curated_status_counts(curated):
    # The fixture: one confirmed, relabeled, ambiguous and excluded source each, one uncurated.
    assert curated_status_counts(curated) == {"confirmed": 1, "relabeled": 1, "ambiguous": 1, "excluded": 1,
                                              "disputed": 0}
    ledger.record_decision(curated, 1, ["surprise"], None, "relabeled", "bob")  # ann confirmed it
    counts = curated_status_counts(curated)
    assert counts == {"confirmed": 0, "relabeled": 1, "ambiguous": 1, "excluded": 1, "disputed": 1}
    assert counts["disputed"] == ledger.current_ground_truth(curated)["status"].eq("disputed").sum()


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_store_same_bytes(curated, tmp_path, fmt):
    a = export_dataset(curated, fmt, tmp_path / "a", include_distorted=True)
    b = export_dataset(curated, fmt, tmp_path / "b", include_distorted=True)
    assert a == b
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    # and a new decision changes the output
    ledger.record_decision(curated, 5, ["surprise"], None, "relabeled", "ann")
    c = export_dataset(curated, fmt, tmp_path / "c", include_distorted=True)
    assert c["files"] != a["files"]


def test_round_trip_through_fer2013_ingest(curated, tmp_path):
    ingest = pytest.importorskip("disfer.data.ingest", reason="the foundation's ingest is not installed")
    export_dataset(curated, "fer2013-csv", tmp_path / "out")
    back = Store(tmp_path / "back.duckdb", lock_timeout=10)
    assert ingest.ingest_fer2013(back, tmp_path / "out" / "fer2013.csv") == 4
    with back.read() as con:
        rows = con.execute("SELECT original_label, pixels, split FROM sources ORDER BY original_index").fetchall()
    gt = ledger.current_ground_truth(curated).set_index("source_id")
    pixels = store_pixels(curated)
    expected = [(gt.loc[1, "primary_label"], pixels[1]), (gt.loc[2, "primary_label"], pixels[2]),
                (gt.loc[3, "primary_label"], pixels[3]), ("fear", pixels[5])]
    assert [(label, bytes(p)) for label, p, _ in rows] == expected
    assert {split for *_, split in rows} == {"PublicTest"}


def test_parquet_multi_hot_soft_labels_and_provenance(curated, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    export_dataset(curated, "parquet", tmp_path / "out", include_distorted=True)
    df = pq.read_table(tmp_path / "out" / "dataset.parquet").to_pandas()
    assert len(df) == 4 * 10  # four exported sources, ten versions each
    assert df.groupby("source_id").size().tolist() == [10, 10, 10, 10]
    amb = df[(df["source_id"] == 3) & (df["distortion"] == "original")].iloc[0]
    assert list(amb["multi_hot"]) == [int(e in ("fear", "sadness")) for e in EMOTIONS]
    soft = dict(zip(EMOTIONS, amb["soft_label"], strict=True))
    assert soft["fear"] == pytest.approx(0.6) and soft["sadness"] == pytest.approx(0.4)
    assert amb["original_label"] == "sadness" and amb["status"] == "ambiguous" and amb["curator"] == "bob"
    assert amb["dataset"] == "fer2013" and amb["original_index"] == 2
    blur = df[df["stimulus_id"] == "3-gaussian_blur-2"].iloc[0]
    with curated.read() as con:
        stored = con.execute("SELECT pixels FROM stimuli WHERE stimulus_id = '3-gaussian_blur-2'").fetchone()[0]
    assert blur["pixels"] == bytes(stored) and blur["label"] == "fear"


def test_folders_tree_and_ferplus_votes(curated, tmp_path):
    from PIL import Image

    export_dataset(curated, "folders", tmp_path / "f")
    png = tmp_path / "f" / "PublicTest" / "disgust" / "2-original-0.png"
    assert np.asarray(Image.open(png)).tobytes() == store_pixels(curated)[2]
    assert not list((tmp_path / "f").rglob("4-original-0.png"))  # excluded
    with open(tmp_path / "f" / "labels.csv") as fh:
        labels = {r["source_id"]: r for r in csv.DictReader(fh)}
    assert labels["3"]["labels"] == "fear,sadness" and labels["3"]["weights"] == "0.6,0.4"

    # Per image by default: source 3's original has one vote (sadness), source 1's one (happiness).
    export_dataset(curated, "ferplus", tmp_path / "p")
    fp = pd.read_csv(tmp_path / "p" / "ferplus.csv").set_index("Image name")
    assert fp.loc["3-original-0.png", "sadness"] == 1 and fp.loc["3-original-0.png", "fear"] == 0
    assert fp.loc["1-original-0.png", "happiness"] == 1 and fp.loc["3-original-0.png", "soft_fear"] == 0.6
    # Pooled over the ten versions only when asked for.
    m = export_dataset(curated, "ferplus", tmp_path / "pooled", pool_versions=True)
    fp = pd.read_csv(tmp_path / "pooled" / "ferplus.csv").set_index("Image name")
    assert fp.loc["3-original-0.png", "sadness"] == 5 and fp.loc["3-original-0.png", "fear"] == 5
    assert fp.loc["1-original-0.png", "happiness"] == 10 and m["vote_counts"] == "pooled_versions"


FERPLUS_STUDY_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]


@pytest.mark.parametrize("include_distorted", [False, True])
def test_ferplus_counts_are_the_votes_on_that_image(store, tmp_path, include_distorted):
    """Issue 16: 48-original-0.png carried 500 votes, the ten versions' together. Each row's counts
    against an independent count of the raw votes table, image by image, and the card says so."""
    rng = np.random.default_rng(3)
    add_sources(store, ["happiness", "anger", "sadness"])
    with store.read() as con:
        stimuli = [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY 1").fetchall()]
    raw = pd.DataFrame({"participant_id": [f"p{i % 7}" for i in range(600)],
                        "stimulus_id": rng.choice(stimuli, 600),
                        "emotion": rng.choice(EMOTIONS, 600)}).drop_duplicates(["participant_id", "stimulus_id"])
    with store.write() as con:
        con.executemany("INSERT INTO participants (participant_id) VALUES (?)", [[f"p{i}"] for i in range(7)])
        con.executemany("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES (?, ?, ?)",
                        raw.values.tolist())
    m = export_dataset(store, "ferplus", tmp_path / "fp", include_distorted=include_distorted)
    fp = pd.read_csv(tmp_path / "fp" / "ferplus.csv")
    expected = raw.groupby(["stimulus_id", "emotion"]).size().unstack(fill_value=0).reindex(
        columns=list(EMOTIONS), fill_value=0)
    assert len(fp) == (30 if include_distorted else 3)
    for row in fp.itertuples(index=False):
        stim = row[1].removesuffix(".png")
        want = expected.loc[stim] if stim in expected.index else pd.Series(0, index=list(EMOTIONS))
        got = fp.loc[fp["Image name"] == row[1], FERPLUS_STUDY_COLUMNS].iloc[0]
        assert got.to_dict() == {e: int(want[e]) for e in FERPLUS_STUDY_COLUMNS}, stim
    assert fp[FERPLUS_STUDY_COLUMNS].to_numpy().sum() == (len(raw) if include_distorted else
                                                          int(raw["stimulus_id"].str.endswith("-original-0").sum()))
    card = (tmp_path / "fp" / "dataset_card.md").read_text()
    assert m["vote_counts"] == "per_image" and "vote counts: per image" in card


def test_pooling_is_a_ferplus_option(curated, tmp_path, capsys):
    with pytest.raises(ConfigError, match="ferplus option"):
        export_dataset(curated, "parquet", tmp_path / "x", pool_versions=True)
    assert main(["--db", str(curated.path), "export", "--format", "ferplus", str(tmp_path / "cli"),
                 "--pool-versions"]) == 0
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["vote_counts"] == "pooled_versions"
    assert "pooled over versions" in (tmp_path / "cli" / "dataset_card.md").read_text()
    assert "vote_counts" not in export_dataset(curated, "fer2013-csv", tmp_path / "plain")


def test_status_filter_and_refusals(curated, tmp_path):
    m = export_dataset(curated, "fer2013-csv", tmp_path / "only", statuses=["relabeled", "excluded"])
    assert m["rows"] == 1 and m["status_counts"] == {"relabeled": 1}  # excluded has no label to write
    with pytest.raises(ConfigError, match="unknown export format"):
        export_dataset(curated, "xlsx", tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown status"):
        export_dataset(curated, "parquet", tmp_path / "x", statuses=["fine"])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        export_dataset(curated, "parquet", tmp_path / "busy", force=True)
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"
    export_dataset(curated, "parquet", tmp_path / "only", force=True)  # replaces a previous export
    assert not (tmp_path / "only" / "fer2013.csv").exists()


def test_cli_export(curated, tmp_path, capsys):
    db = ["--db", str(curated.path)]
    assert main(db + ["export", "--format", "fer2013-csv", str(tmp_path / "out"), "--status", "confirmed",
                      "uncurated"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "fer2013.csv")) == 2
    assert main(db + ["export", "--format", "parquet", str(tmp_path / "two"), "--status", "relabeled,ambiguous",
                      "--include-distorted"]) == 0
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["rows"] == 20
    assert main(db + ["export", "--format", "parquet", str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_real_fer2013_rows_round_trip_with_curated_labels(tmp_path):
    from conftest import FER2013_TEST, require_file

    ingest = pytest.importorskip("disfer.data.ingest", reason="the foundation's ingest is not installed")
    real = require_file(FER2013_TEST)
    with open(real, newline="") as fh:
        rows = list(csv.reader(fh))[:1001]  # header + the first 1,000 real faces
    sample = tmp_path / "fer2013_sample.csv"
    with open(sample, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    store = Store(tmp_path / "real.duckdb", lock_timeout=10)
    assert ingest.ingest_fer2013(store, sample) == 1000
    # Relabel the first three faces to a label each does not have.
    relabeled = {}
    for sid in (1, 2, 3):
        original = FER2013_CODES[int(rows[sid][0])]
        new = next(e for e in ("surprise", "disgust") if e != original)
        ledger.record_decision(store, sid, [new], None, "relabeled", "ann")
        relabeled[sid] = new
    export_dataset(store, "fer2013-csv", tmp_path / "out")
    with open(tmp_path / "out" / "fer2013.csv", newline="") as fh:
        exported = list(csv.reader(fh))
    assert exported[0] == rows[0] and len(exported) == len(rows)
    for i in range(1, len(rows)):
        expected_label = FER2013_CODES.index(relabeled[i]) if i in relabeled else int(rows[i][0])
        assert (int(exported[i][0]), exported[i][1], exported[i][2]) == (expected_label, rows[i][1], rows[i][2])
    back = Store(tmp_path / "back.duckdb", lock_timeout=10)
    ingest.ingest_fer2013(back, tmp_path / "out" / "fer2013.csv")
    with store.read() as con:
        before = con.execute("SELECT original_index, pixels FROM sources ORDER BY 1").fetchall()
    with back.read() as con:
        after = con.execute("SELECT original_index, pixels, original_label FROM sources ORDER BY 1").fetchall()
    assert [(i, bytes(p)) for i, p in before] == [(i, bytes(p)) for i, p, _ in after]
    assert [after[sid - 1][2] for sid in relabeled] == list(relabeled.values())


# -- stored text stays text, paths stay in the folder (issue 13) -------------------------------------
BEACON = "![b](http://127.0.0.1:8599/beacon.png)"
HTML_NOTE = "<img src=x onerror=alert(1)>"


def test_the_dataset_card_shows_a_curator_name_only_escaped(curated, tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    ledger.record_decision(curated, 5, ["surprise"], None, "relabeled", BEACON, note=HTML_NOTE)
    export_dataset(curated, "fer2013-csv", tmp_path / "out")
    card = (tmp_path / "out" / "dataset_card.md").read_text()
    assert markdown_text(BEACON) in card and "![" not in card and "<img" not in card
    html = markdown_it.MarkdownIt().enable("table").render(card)
    assert "<img" not in html and "<a " not in html  # an independent Markdown renderer agrees
    assert BEACON.replace("&", "&amp;") in html  # and shows the name, character for character


@pytest.mark.parametrize("column,value", [("split", "../../elsewhere"), ("split", "/tmp/anywhere"),
                                          ("split", ".hidden"), ("original_label", "../x")])
def test_folders_refuse_stored_text_that_is_not_a_name(curated, tmp_path, column, value):
    with curated.write() as con:  # source 5 is uncurated: its original label is the one exported
        con.execute(f"UPDATE sources SET {column} = ? WHERE source_id = 5", [value])
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=f"source 5: .*{column.split('_')[-1]}.*cannot be used as a file"):
        export_dataset(curated, "folders", tmp_path / "deep" / "out")
    assert set(tmp_path.rglob("*")) == before


def test_force_replaces_a_tree_of_ours_and_leaves_nothing_behind(curated, tmp_path):
    first = export_dataset(curated, "folders", tmp_path / "out")
    ledger.record_decision(curated, 5, ["surprise"], None, "relabeled", "ann")
    second = export_dataset(curated, "folders", tmp_path / "out", force=True)
    assert second["files"] != first["files"] and verify_export(tmp_path / "out") == []
    on_disk = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert on_disk == set(second["files"]) | {"manifest.json"}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial or replaced folder


def test_force_refuses_a_previous_export_holding_a_link(curated, tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    export_dataset(curated, "fer2013-csv", out)
    victim.write_text("precious")
    (out / "fer2013.csv").unlink()
    (out / "fer2013.csv").symlink_to(victim)
    with pytest.raises(ConfigError, match="not exactly a previous export"):
        export_dataset(curated, "fer2013-csv", out, force=True)
    assert victim.read_text() == "precious" and (out / "fer2013.csv").is_symlink()


def test_an_export_is_signed_and_needs_the_admin_role(built_study, tmp_path):
    from disfer.access import AccessDenied, Actor
    from disfer.curation.export import export_dataset

    with pytest.raises(AccessDenied):
        export_dataset(built_study, "fer2013-csv", tmp_path / "no", actor=Actor("c@lab.org", "sub-c", "curator"))
    assert not (tmp_path / "no").exists()
    export_dataset(built_study, "fer2013-csv", tmp_path / "out", actor=Actor("a@lab.org", "sub-a", "admin"))
    with built_study.read() as con:
        assert con.execute("SELECT actor, subject FROM runs WHERE kind = 'export'").fetchall() == [("a@lab.org", "sub-a")]
