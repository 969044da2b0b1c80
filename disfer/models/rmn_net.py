"""The Residual Masking Network (rmn package, `resmasking_dropout1`) with its published checkpoint.

Why the rmn files are loaded by path: `import rmn` downloads checkpoints from the Hugging Face
hub at import time, and the wheel's top-level package `models` runs `models/__init__.py`, which
imports pytorchcv and so torchvision, whose CPU build does not load beside ours (and a matching
CUDA pair makes a 5.5 GB environment). The four files the network needs (resmasking.py,
resnet.py, masking.py, utils.py) import only torch, so we load them as submodules of a private
package whose `__init__` is never run. The definitions and the checkpoint format stay rmn's own.

Cost: about 138 million parameters and 224x224 input; a few images per second on a 2-core CPU.
Use a GPU (`--device cuda`) for whole studies.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from disfer.errors import ConfigError
from disfer.models import weights as W
from disfer.models.base import FER2013_ORDER
from disfer.models.locations import CHECKPOINT_FILE, HF_REPO
from disfer.models.registry import FAMILIES
from disfer.models.torch_base import FERModel

# Where the checkpoint lives is decided torch-free (locations); these stay importable from here.
__all__ = ["CHECKPOINT_FILE", "HF_REPO", "RMNEmotion", "resmasking_module", "rmn_models_dir"]
INPUT_SIZE = 224
_PACKAGE = "_disfer_rmn_models"


def rmn_models_dir() -> Path:
    """The rmn wheel's `models/` folder (located through the installed files, not imported)."""
    try:
        dist = importlib.metadata.distribution("rmn")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("rmn: the rmn package is not installed; "
                          "`pip install --no-deps rmn==3.3.0`") from None
    folder = Path(dist.locate_file("models"))
    if not (folder / "resmasking.py").is_file():
        raise ConfigError(f"{folder}: rmn's models/resmasking.py is missing; reinstall rmn==3.3.0")
    return folder


def resmasking_module() -> types.ModuleType:
    """rmn's `models.resmasking`, imported without running `models/__init__.py`."""
    if f"{_PACKAGE}.resmasking" in sys.modules:
        return sys.modules[f"{_PACKAGE}.resmasking"]
    folder = rmn_models_dir()
    package = types.ModuleType(_PACKAGE)
    package.__path__ = [str(folder)]  # relative imports (.resnet, .masking) resolve in here
    package.__spec__ = importlib.machinery.ModuleSpec(_PACKAGE, None, is_package=True)
    sys.modules[_PACKAGE] = package
    return importlib.import_module(f"{_PACKAGE}.resmasking")


class RMNEmotion(FERModel):
    spec = FAMILIES["rmn"]
    labels = FER2013_ORDER
    head_module = "fc"
    gpu_batch = 128  # 224x224 activations of a ResNet-34 with masks: a few GB per 128 images
    cpu_batch = 16   # ~5 s per batch on 2 cores, so progress moves and finished work is kept

    def build(self) -> nn.Module:
        return resmasking_module().resmasking_dropout1(in_channels=3, num_classes=7)

    def target_layer(self) -> nn.Module:
        # The last residual stage (7x7), not the mask branch's convolutions that follow it in
        # module order: Grad-CAM should explain the features the classifier pools.
        return self.network.layer4

    def load_weights(self, network: nn.Module, path: Path) -> None:
        # rmn's checkpoints keep the state dict under "net"; our fine-tuned variants are bare.
        state = W.load_state_file(path, key=None if path.suffix == ".safetensors" else "net")
        W.apply_state(network, state, path)

    def prepare(self, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        # rmn: grey face stacked to 3 channels, cv2 bilinear resize to 224x224 (rounded to
        # uint8), then ToTensor (x / 255), no mean/std normalisation.
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        if exact:
            x = torch.round(x)
        x = x * (1.0 / 255.0)
        return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)
