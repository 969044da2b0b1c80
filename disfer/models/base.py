"""The one interface every FER model offers, and the machinery the adapters share.

A model takes a batch of 48x48 grey uint8 faces and returns an (N, 7) float32 probability array
in `EMOTIONS` order. Each adapter says how its network preprocesses faces (`preprocess`) and in
which order it emits its classes (`labels`); the reordering to our order happens on the logits
(`logits_to_canonical`), so fine-tuning and saliency work in our order too. Weights load on first
use, so listing or constructing models is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import SIZE
from disfer.models import weights as W

# FER-2013's class order, which all three pre-trained networks emit.
FER2013_ORDER: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' is the GPU where there is one, else the CPU; asking for a missing GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU here")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r} (expected auto, cpu or cuda)") from None


def check_faces(faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8, accepting one (48, 48) face as N = 1."""
    arr = np.asarray(faces)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (SIZE, SIZE) or arr.dtype != np.uint8:
        raise ValueError(f"expected faces of shape (N, 48, 48) uint8, got {arr.shape} {arr.dtype}")
    return arr


class FERModel:
    """Base of the adapters. Subclasses set the class attributes and implement `build`."""

    family: ClassVar[str]
    description: ClassVar[str]
    labels: ClassVar[tuple[str, ...]] = FER2013_ORDER  # the network's own output order
    weights_file: ClassVar[str]                        # the file name a user must provide
    weights_env: ClassVar[str]                         # environment variable naming the file
    channels_last: ClassVar[bool] = True               # weights in NHWC (faster convolutions)
    # Default batches: big enough that a store transaction per batch costs little (~4 ms each),
    # small enough for the activations to stay in memory.
    cpu_batch: ClassVar[int] = 512                     # default batch on the CPU
    gpu_batch: ClassVar[int] = 4096                    # default batch on a GPU (memory-bound)

    def __init__(self, model_id: str | None = None, weights_path: str | Path | None = None,
                 device: str | torch.device = "auto"):
        self.model_id = model_id or self.family
        self.device = resolve_device(device)
        self.weights_path = Path(weights_path) if weights_path is not None else self.find_weights()
        self._network: nn.Module | None = None
        self._fast: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._fast_batch = 0  # the one batch shape the compiled forward was built for
        self._canonical = torch.tensor([self.labels.index(e) for e in EMOTIONS], dtype=torch.long)

    # -- where the weights are -----------------------------------------------------------------
    @classmethod
    def search_paths(cls) -> list[Path]:
        """Candidate files, best first; the first one that exists is used."""
        env = os.environ.get(cls.weights_env)
        return [Path(env)] if env else []

    @classmethod
    def find_weights(cls) -> Path | None:
        return next((p for p in cls.search_paths() if p.is_file()), None)

    @classmethod
    def where_hint(cls) -> str:
        """Where a user should put the weights file, in words."""
        paths = cls.search_paths()
        target = paths[0] if paths else Path(cls.weights_file)
        return f"put {cls.weights_file} at {target} (or set {cls.weights_env} to its path)"

    # -- the network ---------------------------------------------------------------------------
    def build(self) -> nn.Module:
        """The architecture with random weights; the network returns logits in `labels` order."""
        raise NotImplementedError

    def load_weights(self, network: nn.Module, path: Path) -> None:
        W.apply_state(network, W.load_state_file(path), path)

    @property
    def network(self) -> nn.Module:
        """The loaded network on `self.device`, in eval mode (loads the weights on first use)."""
        if self._network is None:
            if self.weights_path is None:
                raise ConfigError(f"{self.model_id}: weights not found; {self.where_hint()}")
            if not self.weights_path.is_file():
                raise ConfigError(f"{self.weights_path}: weights file not found")
            net = self.build()
            self.load_weights(net, self.weights_path)
            net.eval()
            # channels_last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolutions.
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            self._network = net.to(self.device, memory_format=fmt)
        return self._network

    def default_batch(self) -> int:
        return self.gpu_batch if self.device.type == "cuda" else self.cpu_batch

    def load(self) -> FERModel:
        """Load the weights now (they otherwise load on first use); returns self."""
        _ = self.network
        return self

    @property
    def fingerprint(self) -> str:
        if self.weights_path is None:
            raise ConfigError(f"{self.model_id}: weights not found; {self.where_hint()}")
        return W.fingerprint(self.weights_path)

    def preprocess(self, faces: np.ndarray) -> torch.Tensor:
        """(N, 48, 48) uint8 faces as the network's input tensor on `self.device`."""
        return self.prepare(self._to_device(faces))

    def prepare(self, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """(N, 1, 48, 48) float faces in 0..255 -> network input, in torch (runs on the GPU).

        `exact=False` skips rounding steps that copy the reference implementation bit for bit
        but have no gradient, so saliency methods can differentiate through preprocessing.
        """
        raise NotImplementedError

    def _to_device(self, faces: np.ndarray) -> torch.Tensor:
        # The uint8 array crosses to the GPU (4x fewer bytes than float) and is converted there.
        arr = np.ascontiguousarray(check_faces(faces))
        if not arr.flags.writeable:  # e.g. a view of the store's Arrow buffer; torch wants it writable
            arr = arr.copy()
        t = torch.from_numpy(arr)
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        return t.unsqueeze(1).float()

    def logits_to_canonical(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits in `EMOTIONS` order (differentiable, so losses and saliency can use it)."""
        return logits.index_select(1, self._canonical.to(logits.device))

    def target_layer(self) -> nn.Module:
        """The last convolutional layer, the one Grad-CAM explains."""
        convs = [m for m in self.network.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1]

    # -- inference -----------------------------------------------------------------------------
    def enable_compile(self) -> bool:
        """Use torch.compile for inference where the family benefits (compiled now); else False.

        The compiled forward runs fixed-size batches (`_fast_batch`), whatever `predict_proba`
        is given. Call it on a model whose weights are final.
        """
        return False

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._fast or self.network)(x)

    def predict_proba(self, faces: np.ndarray, batch: int = 256) -> np.ndarray:
        """(N, 7) float32 probabilities in `EMOTIONS` order; rows sum to 1; 2-D even for N = 1."""
        arr = check_faces(faces)
        out = np.empty((len(arr), len(EMOTIONS)), dtype=np.float32)
        self.load()  # before inference_mode, so errors are about weights, not tensors
        with torch.inference_mode():
            batch = self._fast_batch if self._fast is not None else batch
            for start in range(0, len(arr), batch):
                chunk = arr[start:start + batch]
                n = len(chunk)
                if self._fast is not None and n < batch:
                    # A compiled network keeps one static shape: pad the last batch with blanks.
                    chunk = np.concatenate([chunk, np.zeros((batch - n, SIZE, SIZE), np.uint8)])
                logits = self.logits_to_canonical(self._forward(self.preprocess(chunk)).float())
                out[start:start + n] = torch.softmax(logits[:n], dim=1).cpu().numpy()
        return out
