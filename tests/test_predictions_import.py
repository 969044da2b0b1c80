import numpy as np
import pytest
from analysis_fixtures import insert_study

from disfer.analysis import load_study
from disfer.cli import main
from disfer.errors import ConfigError, InputError
from disfer.models.predictions_import import import_predictions

HEADER = "stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n"


@pytest.fixture
def study(store):
    insert_study(store, {1: "anger", 2: "happiness"},
                 stimuli=["1-original-0", "1-gaussian_blur-1", "2-original-0"],
                 predictions={"builtin": {"1-original-0": "anger"}})
    return store


def _snapshot(store):
    with store.read() as con:
        return (con.execute("SELECT * FROM models ORDER BY model_id").fetchall(),
                con.execute("SELECT * FROM predictions ORDER BY model_id, stimulus_id").fetchall())


def test_import_probabilities_and_analyse_like_any_model(study, tmp_path):
    f = tmp_path / "api.csv"
    f.write_text(HEADER + "1-original-0,0.7,0.1,0.1,0.05,0.05,0,0\n"
                 "2-original-0,0,0,0.2,0.3,0.5,0,0\n")
    assert import_predictions(study, f, "vendor-api") == 2
    with study.read() as con:
        family = con.execute("SELECT family FROM models WHERE model_id = 'vendor-api'").fetchone()[0]
        rows = con.execute("SELECT stimulus_id, predicted, anger FROM predictions WHERE model_id = 'vendor-api'"
                           " ORDER BY stimulus_id").fetchall()
    assert family == "external"
    assert rows == [("1-original-0", "anger", 0.7), ("2-original-0", "neutral", 0.0)]
    s = load_study(study)
    defined, correct = s.model_correct("vendor-api")
    assert defined.sum() == 2 and correct.sum() == 1


def test_import_emotion_column_and_replace(study, tmp_path):
    f = tmp_path / "lab.csv"
    f.write_text("stimulus_id,emotion\n1-original-0,Angry\n1-gaussian_blur-1,fear\n")
    assert import_predictions(study, f, "lab") == 2
    f.write_text("stimulus_id,emotion\n2-original-0,happiness\n")
    assert import_predictions(study, f, "lab") == 1  # a second import replaces the first
    with study.read() as con:
        assert con.execute("SELECT stimulus_id, predicted, happiness FROM predictions WHERE model_id='lab'"
                           ).fetchall() == [("2-original-0", "happiness", 1.0)]


BAD = {
    "unknown stimulus": (HEADER + "1-original-0,1,0,0,0,0,0,0\n99-original-0,1,0,0,0,0,0,0\n",
                         "row 3: unknown stimulus '99-original-0'"),
    "negative": (HEADER + "1-original-0,1.2,-0.2,0,0,0,0,0\n", "row 2: disgust: probability '-0.2'"),
    "bad sum": (HEADER + "1-original-0,0.5,0.2,0,0,0,0,0\n", "row 2: probabilities sum to 0.7"),
    "not a number": (HEADER + "1-original-0,x,0,0,0,0,0,1\n", "row 2: anger: 'x' is not a number"),
    "unknown emotion": ("stimulus_id,emotion\n1-original-0,contempt\n", "row 2: unknown emotion 'contempt'"),
    "missing columns": ("stimulus_id,anger,fear\n1-original-0,1,0\n", "row 1: needs an 'emotion' column"),
    "no stimulus_id": ("id,emotion\n1-original-0,anger\n", "row 1: missing column 'stimulus_id'"),
    "duplicate": ("stimulus_id,emotion\n1-original-0,anger\n1-original-0,fear\n", "row 3: stimulus '1-original-0' appears twice"),
    "short row": ("stimulus_id,emotion\n1-original-0\n", "row 2: expected at least 2 fields"),
    "empty": ("", "empty file"),
    "header only": ("stimulus_id,emotion\n", "no prediction rows"),
    "overflow": (HEADER + "1-original-0,1e309,0,0,0,0,0,0\n", "row 2: anger: '1e309' is not a finite number"),
    "nan": (HEADER + "1-original-0,nan,0,0,0,0,0,1\n", "row 2: anger: 'nan' is not a number"),
    "inf": (HEADER + "1-original-0,1,0,0,0,0,0,-inf\n", "row 2: surprise: '-inf' is not a number"),
    "arabic digit": (HEADER + "1-original-0,\u0661,0,0,0,0,0,0\n", "row 2: anger: '\u0661' is not a number"),
    "duplicate column": ("stimulus_id,emotion,Emotion\n1-original-0,anger,fear\n",
                         "row 1: column 'emotion' appears twice"),
    "control character": ("stimulus_id,emotion\n1-original-0,anger\n2-original-0\x00,fear\n",
                          "row 3: column stimulus_id: control character"),
    "unknown before bad value": (HEADER + "9-original-0,1,0,0,0,0,0,0\n1-original-0,x,0,0,0,0,0,1\n",
                                 "row 2: unknown stimulus '9-original-0'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_row_and_changes_nothing(study, tmp_path, capsys, case):
    text, message = BAD[case]
    f = tmp_path / "bad.csv"
    f.write_text(text)
    before = _snapshot(study)
    with pytest.raises(InputError, match=message):
        import_predictions(study, f, "vendor")
    assert main(["--db", str(study.path), "predictions", "import", str(f), "--model", "vendor"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(f) in err
    assert _snapshot(study) == before


def test_binary_file_and_missing_file(study, tmp_path):
    f = tmp_path / "weights.csv"
    f.write_bytes(np.arange(256, dtype=np.uint8).tobytes() * 4)
    with pytest.raises(InputError, match="binary"):
        import_predictions(study, f, "vendor")
    with pytest.raises(InputError, match="no such file"):
        import_predictions(study, tmp_path / "absent.csv", "vendor")


def test_refuses_to_overwrite_a_built_in_model_or_a_bad_name(study, tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("stimulus_id,emotion\n1-original-0,fear\n")
    before = _snapshot(study)
    with pytest.raises(ConfigError, match="built-in"):
        import_predictions(study, f, "builtin")
    with pytest.raises(ConfigError, match="bad model name"):
        import_predictions(study, f, "../evil name")
    assert _snapshot(study) == before


def test_cli_import(study, tmp_path, capsys):
    f = tmp_path / "p.csv"
    f.write_text("stimulus_id,emotion\n1-original-0,fear\n2-original-0,happiness\n")
    assert main(["--db", str(study.path), "predictions", "import", str(f), "--model", "ext"]) == 0
    assert "imported 2 predictions of ext" in capsys.readouterr().out


def test_a_file_larger_than_the_store_is_refused_at_its_first_extra_row(study, tmp_path):
    f = tmp_path / "big.csv"
    rows = "".join(f"{sid},anger\n" for sid in ["1-original-0", "1-gaussian_blur-1", "2-original-0"] * 1000)
    f.write_text("stimulus_id,emotion\n" + rows)
    with pytest.raises(InputError, match="row 5: stimulus '1-original-0' appears twice \\(first on row 2\\)"):
        import_predictions(study, f, "vendor")
