"""Issue 14's remaining options: the split of the curated protocol, which layers train, the level mix
of the distortions rendered on the fly, the time per epoch `disfer finetune` prints, and the bad
inputs of the command line (one line, exit 2, nothing registered).

Runs are cut to 1 epoch of 2 tiny batches (FAST) on the small built study (28 PublicTest faces in
the study, 28 Training faces outside it).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from disfer.cli import main
from disfer.errors import ConfigError
from disfer.finetune import finetune, variant_config, weights_file
from disfer.finetune.train import _draw_param
from disfer.ledger import record_decision
from disfer.models import list_models, load_model
from disfer.store import Store

FAST = {"epochs": 1, "batches": 2, "per_class": 1, "device": "cpu"}


def _minixception() -> None:
    info = next(m for m in list_models() if m.name == "minixception")
    if not info.weights_present:
        pytest.skip(f"mini-Xception weights absent: {info.hint}")


def _counts(store) -> tuple[int, int]:
    with store.read() as con:
        return con.execute("SELECT (SELECT count(*) FROM models), "
                           "(SELECT count(*) FROM runs WHERE kind = 'finetune')").fetchone()


# -- the curated protocol's split ------------------------------------------------------------------

@pytest.fixture
def two_split_study(tmp_path) -> Store:
    """A study of every face of two splits: 28 PublicTest and 28 Training faces, 560 stimuli."""
    from conftest import write_fer2013_csv

    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013

    store = Store(tmp_path / "two_splits.duckdb")
    ingest_fer2013(store, write_fer2013_csv(tmp_path / "fer.csv", per_emotion=4,
                                            splits=("PublicTest", "Training")))
    build_study(store, per_class=8, seed=0)   # 8 per emotion: all of them, both splits
    return store


def _study_faces(store, split: str) -> set[int]:
    with store.read() as con:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT source_id FROM stimuli JOIN sources USING (source_id) WHERE split = ?",
            [split]).fetchall()}


def test_curated_with_a_split_trains_on_the_study_faces_of_that_split_only(two_split_study):
    _minixception()
    store = two_split_study
    training = _study_faces(store, "Training")
    assert len(training) == 28 and len(_study_faces(store, "PublicTest")) == 28
    record_decision(store, min(training), ["happiness"], None, "relabeled", "ana")   # a single curated face
    variant = finetune(store, "minixception", protocol="curated", train_split="Training", predict=False, **FAST)
    config = variant_config(store, variant)
    assert config["train_split"] == "Training"
    assert set(config["train_sources"]) | set(config["val_sources"]) == training
    assert config["split"]["curated_sources"] == 1 and config["split"]["original_label_sources"] == 27


@pytest.mark.parametrize("argv, message", [
    (["--protocol", "curated", "--split", "Validation"], "unknown split 'Validation'"),
    (["--protocol", "external", "--train-split", "Validation"], "unknown split 'Validation'"),
    # a split that exists, but holds no face of the study
    (["--protocol", "curated", "--split", "Training"], "no face of the study is in split 'Training'"),
])
def test_a_bad_split_is_one_line_exit_2_and_registers_nothing(built_study, capsys, argv, message):
    _minixception()
    with built_study.read() as con:
        sid = con.execute("SELECT min(source_id) FROM stimuli").fetchone()[0]
    record_decision(built_study, sid, ["happiness"], None, "relabeled", "ana")
    code = main(["--db", str(built_study.path), "finetune", "--model", "minixception", "--device", "cpu", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    if "unknown split" in message:
        assert "PublicTest, Training" in err   # the splits the store has
    assert _counts(built_study) == (0, 0)


# -- which layers train ----------------------------------------------------------------------------

def _states(store, variant):
    parent = {k: v.clone() for k, v in load_model("minixception", device="cpu").network.state_dict().items()}
    return parent, load_file(str(weights_file(store, variant)))


def test_head_only_leaves_every_other_weight_and_statistic_byte_for_byte(built_study):
    _minixception()
    variant = finetune(built_study, "minixception", distortion="gaussian_noise", train_layers="head",
                       predict=False, **FAST)
    assert variant == "minixception-ft-external-gaussian_noise-head"
    assert variant_config(built_study, variant)["train_layers"] == "head"
    parent, child = _states(built_study, variant)
    assert set(parent) == set(child)
    head = [k for k in parent if k.startswith("head.")]
    assert sorted(head) == ["head.bias", "head.weight"]
    for key in parent:
        if key in head:
            assert not torch.equal(parent[key], child[key]), f"{key} did not train"
        else:   # parameters and batch-norm buffers alike
            assert parent[key].numpy().tobytes() == child[key].numpy().tobytes(), f"{key} changed"


def test_all_layers_train_the_body_too(built_study):
    _minixception()
    variant = finetune(built_study, "minixception", distortion="gaussian_noise", predict=False, **FAST)
    assert variant_config(built_study, variant)["train_layers"] == "all"
    parent, child = _states(built_study, variant)
    body = [k for k in parent if not k.startswith("head.") and parent[k].dtype.is_floating_point]
    assert not torch.equal(parent["conv1.weight"], child["conv1.weight"])
    assert not torch.equal(parent["bn1.running_mean"], child["bn1.running_mean"])
    assert sum(not torch.equal(parent[k], child[k]) for k in body) > len(body) // 2


def test_each_family_names_the_layer_that_emits_its_logits():
    from disfer.models.deepface_net import DeepFaceEmotion
    from disfer.models.minixception import MiniXception, MiniXceptionNet

    net = MiniXceptionNet().eval()
    ran = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
             for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    net(torch.zeros(1, 1, 64, 64))
    for h in hooks:
        h.remove()
    assert ran[-1] == MiniXception.head_module
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    deepface = DeepFaceEmotion("deepface", None, "cpu").build()
    last = [n for n, m in deepface.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    assert deepface.get_submodule(DeepFaceEmotion.head_module).out_features == 7 and last == "fc_3"


# -- the level mix of the distortions rendered on the fly -------------------------------------------

def _levels(mix: str, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    draws = [_draw_param((10.0, 20.0, 30.0), mix, rng) for _ in range(n)]
    return np.array([d[0] for d in draws]), np.array([d[1] for d in draws])


def test_level_mixes_draw_the_levels_they_promise():
    level, param = _levels("uniform")
    assert np.allclose(np.bincount(level)[1:] / len(level), [1 / 3] * 3, atol=0.02)
    assert set(param) == {10.0, 20.0, 30.0}
    # uniform is the draw earlier runs made: same seed, same levels
    rng = np.random.default_rng(0)
    assert level.tolist() == [int(rng.integers(1, 4)) for _ in range(len(level))]
    level, param = _levels("strongest")
    assert np.allclose(np.bincount(level)[1:] / len(level), [1 / 6, 2 / 6, 3 / 6], atol=0.02)
    level, param = _levels("range")
    assert param.min() >= 10 and param.max() <= 30 and len(set(param)) == len(param)
    assert abs(param.mean() - 20) < 0.5 and abs((param < 15).mean() - 0.25) < 0.02


def test_level_mix_is_recorded_and_refused_where_nothing_is_rendered(built_study):
    _minixception()
    variant = finetune(built_study, "minixception", distortion="salt_pepper", level_mix="strongest",
                       predict=False, **FAST)
    assert variant == "minixception-ft-external-salt_pepper-strongest"
    assert variant_config(built_study, variant)["level_mix"] == "strongest"
    before = _counts(built_study)
    with pytest.raises(ConfigError, match="--level-mix shapes the distortions rendered on the fly"):
        finetune(built_study, "minixception", protocol="paper", distortion="salt_pepper",
                 level_mix="range", **FAST)
    assert _counts(built_study) == before


# -- the command line: time per epoch, and bad input ------------------------------------------------

def test_the_command_prints_the_time_of_every_epoch_and_the_mean(built_study, capsys):
    _minixception()
    code = main(["--db", str(built_study.path), "finetune", "--model", "minixception", "--distortion",
                 "gaussian_blur", "--epochs", "2", "--batches", "1", "--per-class", "1", "--device", "cpu",
                 "--train-layers", "head", "--level-mix", "range"])
    out = capsys.readouterr().out
    assert code == 0
    epochs = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 3 and not epochs[0].endswith(" s")   # epoch 0 is the parent: nothing trained
    curve = variant_config(built_study, "minixception-ft-external-gaussian_blur-head-range")["curve"]
    for line, row in zip(epochs[1:], curve[1:], strict=True):
        assert line.endswith(f"  {row['seconds']:.1f} s")
    mean = (curve[1]["seconds"] + curve[2]["seconds"]) / 2
    assert f"{mean:.1f} s per epoch" in out


def _delete_outside(store) -> None:
    with store.write() as con:
        con.execute("DELETE FROM sources WHERE source_id NOT IN (SELECT source_id FROM stimuli)")


def _exclude_all(store) -> None:
    with store.read() as con:
        ids = [r[0] for r in con.execute("SELECT DISTINCT source_id FROM stimuli ORDER BY 1").fetchall()]
    for sid in ids:
        record_decision(store, sid, [], None, "excluded", "ana")


@pytest.mark.parametrize("prepare, argv, message", [
    (None, ["--distortion", "fog"], "unknown distortion 'fog'"),
    (_delete_outside, ["--distortion", "gaussian_blur"], "no faces outside the study"),
    (_exclude_all, ["--protocol", "curated"], "every face of the study is excluded"),
    (None, ["--epochs", "0"], "epochs must be between 1 and 50, not 0"),
    (None, ["--epochs", "51"], "epochs must be between 1 and 50, not 51"),
    (None, ["--batches", "0"], "batches per epoch must be between 1 and 200, not 0"),
    (None, ["--batches", "201"], "batches per epoch must be between 1 and 200, not 201"),
    (None, ["--per-class", "33"], "images per emotion per batch must be between 1 and 32"),
    (None, ["--protocol", "paper", "--distortion", "gaussian_blur", "--level-mix", "strongest"],
     "--level-mix shapes"),
])
def test_bad_input_on_the_command_line_is_one_line_exit_2_and_registers_nothing(built_study, capsys, prepare,
                                                                                 argv, message):
    _minixception()
    if prepare:
        prepare(built_study)
    before = _counts(built_study)
    code = main(["--db", str(built_study.path), "finetune", "--model", "minixception", "--device", "cpu", *argv])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and message in err and "\n" not in err, err
    assert "epoch" not in captured.out   # it failed before training
    assert _counts(built_study) == before


def test_an_absent_gpu_is_one_line_exit_2(built_study, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present here")
    code = main(["--db", str(built_study.path), "finetune", "--model", "minixception", "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cuda" in err.lower() and "\n" not in err
    assert _counts(built_study) == (0, 0)


def test_deepface_fine_tunes_and_prints_its_time_per_epoch(built_study, capsys):
    """DeepFace with a weights file made here (random weights, its architecture and format)."""
    from disfer.models.deepface_net import WEIGHTS_FILE, deepface_weights_dir

    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    path = deepface_weights_dir() / WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(EmotionModel().state_dict(), path)
    code = main(["--db", str(built_study.path), "finetune", "--model", "deepface", "--distortion", "salt_pepper",
                 "--epochs", "1", "--batches", "2", "--per-class", "1", "--device", "cpu",
                 "--train-layers", "head"])
    out = capsys.readouterr().out
    assert code == 0, out
    seconds = variant_config(built_study, "deepface-ft-external-salt_pepper-head")["seconds_per_epoch"]
    assert f"{seconds:.1f} s per epoch" in out and "280 stimuli predicted" in out
    epoch1 = next(line for line in out.splitlines() if line.startswith("epoch   1"))
    assert epoch1.endswith(" s")


def test_a_checkpoint_of_a_module_registered_under_two_names_is_written_and_read_back():
    """RMN's masks register a module under two names; safetensors refused the shared memory, so
    fine-tuning RMN failed after training."""
    from safetensors.torch import load

    from disfer.finetune.checkpoints import checkpoint_bytes

    net = torch.nn.Sequential(torch.nn.Linear(3, 3))
    net.alias = net[0]   # the same module, a second name
    state = net.state_dict()
    assert state["0.weight"].data_ptr() == state["alias.weight"].data_ptr()
    back = load(checkpoint_bytes(state))
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 3))
    fresh.alias = fresh[0]
    fresh.load_state_dict(back)
    assert torch.equal(fresh[0].weight, net[0].weight)
