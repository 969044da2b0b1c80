"""Issue 13's attacks, each reproduced: hostile values, files and paths are refused with one line
and exit status 2, the store is left byte for byte as it was, and nothing is written outside the
folder the user chose. Cases marked xfail are known defects still open (strict: a fix must remove
the mark)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import duckdb
import numpy as np
import pytest
from test_bad_input import GOOD_PIXELS, _fer, _snapshot

from disfer.cli import main
from disfer.store import CONNECT_CONFIG

DISFER = Path(sys.executable).with_name("disfer")
OPEN = "issue 13: not fixed yet"


def _png_header_only(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims width x height, with one small IDAT: what a bomb's header says."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
            + chunk(b"IEND", b""))


def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


# (id, file name, content, command, expected text in the one line, xfail?)
VALUE_CASES = [
    ("pixel-wraps-around", "f.csv", _fer([f"0,4294967424 {' '.join(['1'] * 2303)},Training"]),
     ["ingest", "fer2013"], "grey value 4294967424 outside 0..255", False),
    ("usage-traversal", "f.csv", _fer([f"0,{GOOD_PIXELS},../../elsewhere"]),
     ["ingest", "fer2013"], "'../../elsewhere'", False),
    ("usage-absolute", "f.csv", _fer([f"0,{GOOD_PIXELS},/tmp/elsewhere"]),
     ["ingest", "fer2013"], "'/tmp/elsewhere'", False),
    ("usage-nul", "f.csv", _fer([f"0,{GOOD_PIXELS},Train\x00ing"]),
     ["ingest", "fer2013"], "control character", False),
    ("votes-rt-inf", "v.csv", "participant_id,stimulus_id,emotion,rt_ms\np1,{s1},happy,inf\n",
     ["votes", "import"], "rt_ms 'inf'", False),
    ("votes-rt-1e309", "v.csv", "participant_id,stimulus_id,emotion,rt_ms\np1,{s1},happy,1e309\n",
     ["votes", "import"], "rt_ms '1e309'", False),
    ("votes-attribute-nan", "v.csv", "participant_id,stimulus_id,emotion,score\np1,{s1},happy,nan\n",
     ["votes", "import"], "score 'nan'", False),
    ("votes-attribute-inf", "v.csv", "participant_id,stimulus_id,emotion,score\np1,{s1},happy,-inf\n",
     ["votes", "import"], "score '-inf'", False),
    ("votes-participant-nul", "v.csv", "participant_id,stimulus_id,emotion\np\x001,{s1},happy\n",
     ["votes", "import"], "control character", False),
    ("votes-duplicate-column", "v.csv", "participant_id,stimulus_id,emotion,emotion\np1,{s1},happy,fear\n",
     ["votes", "import"], "column 'emotion' appears twice", False),
    ("votes-date-out-of-range", "v.csv",
     "participant_id,stimulus_id,emotion,answered_at\np1,{s1},happy,0001-01-01T00:00:00+01:00\n",
     ["votes", "import"], "answered_at '0001-01-01T00:00:00+01:00'", False),
    ("predictions-duplicate-column", "p.csv",
     "stimulus_id,anger,anger,disgust,fear,happiness,neutral,sadness,surprise\n{s1},0.1,0.1,0.1,0.1,0.2,0.2,0.1,0.1\n",
     ["predictions", "import", "--model", "ext"], "column 'anger' appears twice", False),
    ("predictions-arabic-digit", "p.csv",
     "stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n{s1},\u0661,0,0,0,0,0,0\n",
     ["predictions", "import", "--model", "ext"], "'\u0661' is not a number", False),
    ("predictions-fullwidth-digit", "p.csv",
     "stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n{s1},\uff11,0,0,0,0,0,0\n",
     ["predictions", "import", "--model", "ext"], "'\uff11' is not a number", False),
    ("predictions-underscore", "p.csv",
     "stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n{s1},0.1_0,0.9,0,0,0,0,0\n",
     ["predictions", "import", "--model", "ext"], "'0.1_0' is not a number", False),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0], marks=[pytest.mark.xfail(strict=True, reason=OPEN)]
                                               if c[5] else []) for c in VALUE_CASES])
def test_hostile_values_are_refused_in_one_line(built_study, tmp_path, capsys, case):
    _, name, content, command, text, _ = case
    with built_study.read() as con:
        s1 = con.execute("SELECT min(stimulus_id) FROM stimuli").fetchone()[0]
    path = tmp_path / name
    path.write_text(content.replace("{s1}", s1))
    before = _snapshot(built_study.path)
    code, lines = _cli(["--db", str(built_study.path), "--quiet", *command, str(path)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert str(path) in lines[0] and text in lines[0], lines[0]
    assert _snapshot(built_study.path) == before


@pytest.mark.parametrize("bit_depth,colour", [(8, 0), (16, 6)], ids=["grey", "rgba16"])
def test_a_decompression_bomb_is_refused_by_its_header(built_study, tmp_path, capsys, bit_depth, colour):
    folder = tmp_path / "tree" / "Training" / "happy"
    folder.mkdir(parents=True)
    (folder / "bomb.png").write_bytes(_png_header_only(20000, 20000, bit_depth, colour))
    before = _snapshot(built_study.path)
    code, lines = _cli(["--db", str(built_study.path), "ingest", "folder", str(tmp_path / "tree")], capsys)
    assert code == 2 and len(lines) == 1 and "20000x20000" in lines[0], lines
    assert _snapshot(built_study.path) == before


# -- files outside their folder -------------------------------------------------------------------
def _sources_with_split(store, split: str) -> None:
    """A face whose split is hostile text, as a store from an older release could hold it."""
    with store.write() as con:
        con.execute("UPDATE sources SET split = ? WHERE source_id = (SELECT min(source_id) FROM stimuli)", [split])


@pytest.mark.parametrize("split", ["../../elsewhere", "ABSOLUTE"])
def test_export_folders_never_writes_outside_out(built_study, tmp_path, capsys, split):
    # An absolute path of this test's own (a fixed /tmp name would be shared by every run).
    escape = tmp_path / "absolute-escape"
    _sources_with_split(built_study, str(escape) if split == "ABSOLUTE" else split)
    out = tmp_path / "deep" / "er" / "out"
    before = {p for p in tmp_path.rglob("*")}
    code, lines = _cli(["--db", str(built_study.path), "export", "--format", "folders", str(out)], capsys)
    written = {p for p in tmp_path.rglob("*")} - before
    assert all(p == out or out in p.parents or p in out.parents for p in written), sorted(written)[:5]
    assert not escape.exists() and not (tmp_path / "deep" / "elsewhere").exists()
    assert code == 2 and len(lines) == 1 and "cannot be used as a file or folder name" in lines[0], lines
    assert not written  # refused before anything is written


def _export(store, out: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    return _cli(["--db", str(store.path), "export", "--format", "fer2013-csv", *extra, str(out)], capsys)


def test_force_never_deletes_a_users_files(built_study, tmp_path, capsys):
    out = tmp_path / "out"
    assert _export(built_study, out, capsys)[0] == 0
    (out / "thesis.docx").write_text("three years of work")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("a,b\n")
    code, lines = _export(built_study, out, capsys, "--force")
    assert code == 2 and len(lines) == 1
    assert (out / "thesis.docx").read_text() == "three years of work"
    assert (out / "sub" / "data.csv").read_text() == "a,b\n"


def test_force_replaces_a_previous_export(built_study, tmp_path, capsys):
    out = tmp_path / "out"
    assert _export(built_study, out, capsys)[0] == 0
    first = json.loads((out / "manifest.json").read_text())
    assert _export(built_study, out, capsys, "--force")[0] == 0
    assert json.loads((out / "manifest.json").read_text())["files"] == first["files"]


@pytest.mark.parametrize("planted", ["1-original-0.png", "manifest.csv"])
def test_export_stimuli_never_follows_a_planted_link(built_study, tmp_path, capsys, planted):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    with built_study.read() as con:
        first = con.execute("SELECT min(source_id) FROM stimuli").fetchone()[0]
    (out / planted.replace("1-", f"{first}-")).symlink_to(victim)
    code, _ = _cli(["--db", str(built_study.path), "export-stimuli", str(out)], capsys)
    assert victim.read_text() == "precious"
    assert code in (0, 2)


@pytest.mark.parametrize("where", ["under-a-file", "proc", "linked-force"])
def test_exports_to_impossible_places_are_one_line(built_study, tmp_path, capsys, where):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    real = tmp_path / "real"
    if where == "linked-force":
        assert _export(built_study, real, capsys)[0] == 0
        (tmp_path / "link").symlink_to(real, target_is_directory=True)
    target = {"under-a-file": blocker / "out", "proc": Path("/proc/disfer-out"),
              "linked-force": tmp_path / "link"}[where]
    for command in (["export", "--format", "fer2013-csv", "--force"], ["export-stimuli"]):
        code, lines = _cli(["--db", str(built_study.path), *command, str(target)], capsys)
        assert code == 2 and len(lines) == 1, lines
    assert blocker.read_text() == "x"


# -- stores -----------------------------------------------------------------------------------------
def _proc(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(DISFER), *args], capture_output=True, text=True, timeout=timeout)


def test_info_on_a_foreign_duckdb_file_changes_nothing(tmp_path):
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path), config=CONNECT_CONFIG)
    con.execute("CREATE TABLE sources (id INTEGER)")
    con.close()
    before = path.read_bytes()
    for command in (["info"], ["report"], ["ingest", "fer2013", str(tmp_path / "absent.csv")]):
        proc = _proc(["--db", str(path), *command])
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert path.read_bytes() == before


def test_reading_commands_create_nothing(tmp_path):
    missing = tmp_path / "no" / "store.duckdb"
    for command in (["info"], ["report"], ["curate", "log"]):
        proc = _proc(["--db", str(missing), *command])
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "no").exists()


def test_a_fifo_as_the_store_is_refused_quickly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    start = time.monotonic()
    proc = _proc(["--db", str(fifo), "info"], timeout=30)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr
    assert time.monotonic() - start < 20


def test_a_store_cut_in_half_then_report(built_study, tmp_path):
    data = built_study.path.read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(data[: len(data) // 2])
    proc = _proc(["--db", str(cut), "report"])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_weights_that_are_a_folder(built_study, tmp_path):
    proc = _proc(["--db", str(built_study.path), "predict", "--model", "minixception", "--weights", str(tmp_path)])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "weights_only" not in proc.stderr, proc.stderr


def test_weights_that_are_not_weights(built_study, tmp_path):
    fake = tmp_path / "model.pth"
    fake.write_bytes(np.random.default_rng(0).bytes(4096))
    proc = _proc(["--db", str(built_study.path), "predict", "--model", "minixception", "--weights", str(fake)])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "weights_only" not in proc.stderr, proc.stderr


def test_backup_from_the_cli_restores(built_study, tmp_path):
    dest = tmp_path / "copy.duckdb"
    proc = _proc(["--db", str(built_study.path), "backup", str(dest)])
    assert proc.returncode == 0, proc.stderr
    assert _snapshot(dest)[1] == _snapshot(built_study.path)[1]
    again = _proc(["--db", str(built_study.path), "backup", str(dest)])
    assert again.returncode == 2 and "never overwrites" in again.stderr
