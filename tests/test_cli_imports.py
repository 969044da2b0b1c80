"""Commands that run no model import no model library: each is checked in a fresh interpreter.

torch alone costs 1.5-3 s of a cold start; `disfer info` or `disfer curate log` should answer
in well under a second (benchmarks/bench_cli.py has the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from disfer.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "captum", "cv2", "sklearn", "scipy", "statsmodels", "deepface", "tensorflow",
         "keras", "onnx", "h5py")
# Runs the CLI in this interpreter, then reports its exit code and the heavy modules it imported.
PROBE = ("import json, sys\n"
         "from disfer.cli import main\n"
         "code = main(sys.argv[1:])\n"
         f"print(json.dumps({{'code': code, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n")


def run_fresh(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def curated_study(built_study):
    with built_study.read() as con:
        source = con.execute("SELECT min(source_id) FROM sources").fetchall()[0][0]
    assert main(["--db", str(built_study.path), "curate", "set", str(source), "--status", "excluded",
                 "--curator", "ann"]) == 0
    return built_study, source


@pytest.mark.parametrize("command", [["info"], ["curate", "log"], ["curate", "show", "{source}"], ["models"]],
                         ids=" ".join)
def test_commands_without_a_model_import_no_model_library(curated_study, command):
    store, source = curated_study
    result = run_fresh("--db", str(store.path), *(word.format(source=source) for word in command))
    assert result == {"code": 0, "heavy": []}


def test_the_report_imports_no_model_library_nor_statsmodels(store):
    # statsmodels brings scipy.stats: over a second of every cold `disfer report` (McNemar's test
    # takes its distributions from scipy.special instead). The study has votes and two models, so
    # every section of the report is computed.
    from analysis_fixtures import random_study

    random_study(store, n_sources=8, raters_per_playlist=4, seed=3)
    result = run_fresh("--db", str(store.path), "report", "--json", "--bootstrap", "10")
    assert result["code"] == 0
    assert not {"torch", "statsmodels", "sklearn"} & set(result["heavy"])


def test_listing_models_imports_no_torch():
    code = "import sys; from disfer.models import list_models; list_models(); print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_deferred_options_are_declared_when_their_command_is_used(capsys, store):
    # `finetune` and `curate` declare their options on first use (cli.CommandParser).
    for argv in (["finetune", "--help"], ["curate", "--help"], ["curate", "set", "--help"]):
        with pytest.raises(SystemExit) as exit:
            main(["--db", str(store.path), *argv])
        assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "{external,paper,curated}" in out and "queue" in out and "confirmed, relabeled" in out
    with pytest.raises(SystemExit) as exit:
        main(["--db", str(store.path), "export", "out"])
    assert exit.value.code == 2 and "--format" in capsys.readouterr().err
