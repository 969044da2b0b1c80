"""The battery of malformed inputs, through the CLI: exit status 2, one line on stderr naming the
file, the row and the problem, and the store exactly as before (bytes and rows)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from disfer.cli import main
from disfer.store import CONNECT_CONFIG

GOOD_PIXELS = " ".join(["128"] * 2304)


def _fer(rows: list[str], header: str = "emotion,pixels,Usage") -> str:
    return "\n".join([header, *rows]) + "\n"


def _many_good_then(bad: str, n: int = 60) -> str:
    return _fer([f"{i % 7},{GOOD_PIXELS},Training" for i in range(n)] + [bad])


# (case id, file name, file content (str or bytes), command words after the file, expected row, text)
CASES = [
    ("fer-wrong-columns", "f.csv", _fer([f"0,{GOOD_PIXELS},Training"], "label,pixels,Usage"),
     ["ingest", "fer2013"], 1, "missing column(s) emotion"),
    ("fer-2303-pixels", "f.csv", _fer([f"0,{' '.join(['1'] * 2303)},Training"]),
     ["ingest", "fer2013"], 2, "expected 2,304 grey values, got 2,303"),
    ("fer-grey-256", "f.csv", _fer([f"0,{' '.join(['1'] * 2303)} 256,Training"]),
     ["ingest", "fer2013"], 2, "grey value 256 outside 0..255"),
    ("fer-grey-negative", "f.csv", _fer([f"0,-1 {' '.join(['1'] * 2303)},Training"]),
     ["ingest", "fer2013"], 2, "grey value -1 outside 0..255"),
    ("fer-not-a-number", "f.csv", _fer([f"0,{' '.join(['1'] * 2303)} 1x,Training"]),
     ["ingest", "fer2013"], 2, "'1x' is not a whole number"),
    ("fer-unknown-emotion", "f.csv", _fer([f"7,{GOOD_PIXELS},Training"]),
     ["ingest", "fer2013"], 2, "unknown emotion '7'"),
    ("fer-bad-row-deep-in-file", "f.csv", _many_good_then(f"0,{' '.join(['9'] * 100)},Training"),
     ["ingest", "fer2013"], 62, "expected 2,304 grey values, got 100"),
    ("fer-field-count", "f.csv", _fer([f"0,{GOOD_PIXELS}"]), ["ingest", "fer2013"], 2, "expected 3 fields, got 2"),
    ("fer-empty-file", "f.csv", "", ["ingest", "fer2013"], None, "empty file"),
    ("fer-header-only", "f.csv", "emotion,pixels,Usage\n", ["ingest", "fer2013"], 2, "no data rows"),
    ("fer-binary-file", "f.csv", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
     ["ingest", "fer2013"], None, "binary file"),
    ("fer-missing-file", None, None, ["ingest", "fer2013"], None, "no such file"),
    ("ferplus-wrong-columns", "fp.csv", "Usage,Image name,neutral\nTraining,fer0.png,10\n",
     ["ingest", "ferplus"], 1, "missing column(s) happiness"),
    ("ferplus-bad-count", "fp.csv",
     "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
     "Training,fer0.png,4,0,0,1,3,2,0,0,0,0\nTraining,fer1.png,4,x,0,1,3,2,0,0,0,0\n",
     ["ingest", "ferplus"], 3, "column happiness: 'x' is not a vote count"),
    ("votes-wrong-columns", "v.csv", "participant,stimulus_id,emotion\np1,{s1},happy\n",
     ["votes", "import"], 1, "missing column(s) participant_id"),
    ("votes-unknown-emotion", "v.csv", "participant_id,stimulus_id,emotion\np1,{s1},happy\np1,{s2},bored\n",
     ["votes", "import"], 3, "unknown emotion 'bored'"),
    ("votes-unknown-stimulus", "v.csv", "participant_id,stimulus_id,emotion\np1,9999-original-0,happy\n",
     ["votes", "import"], 2, "unknown stimulus_id '9999-original-0'"),
    ("votes-duplicate", "v.csv", "participant_id,stimulus_id,emotion\np1,{s1},happy\np2,{s1},fear\np1,{s1},sad\n",
     ["votes", "import"], 4, "duplicate vote of participant 'p1'"),
    ("votes-bad-rt", "v.csv", "participant_id,stimulus_id,emotion,rt_ms\np1,{s1},happy,fast\n",
     ["votes", "import"], 2, "rt_ms 'fast'"),
    ("votes-bad-date", "v.csv", "participant_id,stimulus_id,emotion,answered_at\np1,{s1},happy,yesterday\n",
     ["votes", "import"], 2, "answered_at 'yesterday'"),
    ("votes-empty-file", "v.csv", "", ["votes", "import"], None, "empty file"),
    # Issue 13: values a strict reader refuses (the hostile cases live in test_hostile_input.py).
    ("fer-usage-unsafe", "f.csv", _many_good_then(f"0,{GOOD_PIXELS},Public Test", n=3),
     ["ingest", "fer2013"], 5, "Usage 'Public Test' cannot be used as a file or folder name"),
    ("fer-duplicate-column", "f.csv", _fer([f"0,{GOOD_PIXELS},Training,x"], "emotion,pixels,Usage,USAGE"),
     ["ingest", "fer2013"], 1, "column 'usage' appears twice"),
    ("ferplus-duplicate-column", "fp.csv",
     "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF,NF\n"
     "Training,fer0.png,4,0,0,1,3,2,0,0,0,0,0\n", ["ingest", "ferplus"], 1, "column 'nf' appears twice"),
    ("ferplus-fullwidth-count", "fp.csv",
     "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
     "Training,fer0.png,\uff14,0,0,1,3,2,0,0,0,0\n", ["ingest", "ferplus"], 2, "column neutral: '\uff14'"),
    ("votes-attribute-overflow", "v.csv", "participant_id,stimulus_id,emotion,score\np1,{s1},happy,1e999\n",
     ["votes", "import"], 2, "score '1e999' is not a finite number"),
    ("votes-control-in-stimulus", "v.csv", "participant_id,stimulus_id,emotion\np1,{s1}\x1b,happy\n",
     ["votes", "import"], 2, "column stimulus_id: control character '\\x1b'"),
    ("predictions-nan", "p.csv", "stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n"
     "{s1},1,0,0,0,0,0,0\n{s2},nan,0,0,0,0,0,1\n", ["predictions", "import", "--model", "ext"], 3,
     "anger: 'nan' is not a number"),
    ("votes-binary-file", "v.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, ["votes", "import"], None, "binary file"),
]


def _snapshot(db: Path) -> tuple[str, dict]:
    import duckdb

    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    con = duckdb.connect(str(db), read_only=True, config=CONNECT_CONFIG)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()
    return digest, rows


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_exits_2_with_one_line_and_leaves_the_store_unchanged(built_study, tmp_path, capsys, case):
    _, name, content, command, row, text = case
    with built_study.read() as con:
        s1, s2 = [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY 1 LIMIT 2").fetchall()]
    path = tmp_path / (name or "absent.csv")
    if isinstance(content, str):
        path.write_text(content.replace("{s1}", s1).replace("{s2}", s2))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    db = built_study.path
    before = _snapshot(db)
    code, err = _run(["--db", str(db), "--quiet", *command, str(path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    where = f"{path}: row {row}: " if row is not None else f"{path}: "
    assert where in lines[0] and text in lines[0], lines[0]
    after = _snapshot(db)
    assert after[1] == before[1], "rows changed"
    assert after[0] == before[0], "store file bytes changed"


def _image_tree(root: Path, bad_name: str, bad_bytes: bytes | None, emotion: str = "happy") -> Path:
    import cv2

    good = root / "train" / "sad"
    good.mkdir(parents=True)
    cv2.imwrite(str(good / "ok.png"), np.full((48, 48), 90, np.uint8))
    folder = root / "train" / emotion
    folder.mkdir(parents=True, exist_ok=True)
    if bad_bytes is None:
        cv2.imwrite(str(folder / bad_name), np.full((48, 48), 90, np.uint8))
    else:
        (folder / bad_name).write_bytes(bad_bytes)
    return root


@pytest.mark.parametrize("bad_name,bad_bytes,emotion,text", [
    ("broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png", "happy", "unreadable image"),
    ("empty.jpg", b"", "happy", "unreadable image"),
    ("fine.png", None, "bored", "unknown emotion 'bored'"),
])
def test_folder_with_an_unreadable_image_or_unknown_emotion(built_study, tmp_path, capsys,
                                                            bad_name, bad_bytes, emotion, text):
    root = _image_tree(tmp_path / "tree", bad_name, bad_bytes, emotion)
    before = _snapshot(built_study.path)
    code, err = _run(["--db", str(built_study.path), "ingest", "folder", str(root)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(root / "train" / emotion / bad_name) in err and text in err
    assert _snapshot(built_study.path) == before


def test_participants_file_listing_someone_twice(built_study, tmp_path, capsys):
    with built_study.read() as con:
        s1 = con.execute("SELECT min(stimulus_id) FROM stimuli").fetchall()[0][0]
    (tmp_path / "v.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s1},happy\n")
    (tmp_path / "p.csv").write_text("participant_id,age\np1,30\np1,31\n")
    before = _snapshot(built_study.path)
    code, err = _run(["--db", str(built_study.path), "votes", "import", str(tmp_path / "v.csv"),
                      "--participants", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and f"{tmp_path / 'p.csv'}: row 3: participant 'p1' is listed twice" in err
    assert _snapshot(built_study.path) == before


def test_a_store_that_is_not_a_duckdb_file_is_refused_and_kept(tmp_path, fer2013_csv):
    fake = tmp_path / "notes.duckdb"
    fake.write_text("these are my notes, not a store\n")
    csv_path = fer2013_csv(per_emotion=1)
    # Through the installed console script: a real process, its real exit status and stderr.
    script = Path(sys.executable).with_name("disfer")
    proc = subprocess.run([str(script), "--db", str(fake), "ingest", "fer2013", str(csv_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"disfer: error: {fake}: not a DuckDB store"]
    assert fake.read_text() == "these are my notes, not a store\n"
