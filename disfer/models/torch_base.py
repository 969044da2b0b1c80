"""The torch machinery every network adapter shares: devices, weights, preprocessing, inference.

An adapter subclasses `FERModel` and names its `spec` (its entry in the registry, which gives it
its family, description and weights location); it says how its network preprocesses faces
(`prepare`) and in which order it emits its classes (`labels`). The reordering to our order
happens on the logits (`logits_to_canonical`), so fine-tuning and saliency work in our order
too. Weights load on first use, so constructing a model is cheap. Only the adapters (and the code
that runs them) import this module: it imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import SIZE
from disfer.models import weights as W
from disfer.models.base import FER2013_ORDER, ModelSpec, check_faces

if TYPE_CHECKING:
    from disfer.models.runtimes import ExportedNetwork


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


class FERModel:
    """Base of the adapters. Subclasses set `spec` (and the class attributes below) and implement
    `build` and `prepare`."""

    spec: ClassVar[ModelSpec]                          # the family's registry entry
    # Copied from `spec` when a subclass is defined, so `MiniXception.family` and friends read
    # as before without a second place that spells them.
    family: ClassVar[str]
    description: ClassVar[str]
    weights_file: ClassVar[str]                        # the file name a user must provide
    weights_env: ClassVar[str]                         # environment variable naming the file
    labels: ClassVar[tuple[str, ...]] = FER2013_ORDER  # the network's own output order
    channels_last: ClassVar[bool] = True               # weights in NHWC (faster convolutions)
    # Default batches: big enough that a store transaction per batch costs little (~4 ms each),
    # small enough for the activations to stay in memory.
    cpu_batch: ClassVar[int] = 512                     # default batch on the CPU
    gpu_batch: ClassVar[int] = 4096                    # default batch on a GPU (memory-bound)
    # The submodule that emits the logits: what `disfer finetune --train-layers head` trains.
    head_module: ClassVar[str]
    # Whether the inference graph is exported to run in a CPU runtime (disfer.models.runtimes);
    # the small networks are, where the runtimes measured faster than torch.
    exportable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            cls.family, cls.description = spec.family, spec.description
            cls.weights_file, cls.weights_env = spec.weights_file, spec.weights_env

    def __init__(self, model_id: str | None = None, weights_path: str | Path | None = None,
                 device: str | torch.device = "auto", parent_id: str | None = None):
        self.model_id = model_id or self.family
        self.parent_id = parent_id  # the model a fine-tuned variant was trained from, else None
        self.device = resolve_device(device)
        self.weights_path = Path(weights_path) if weights_path is not None else self.find_weights()
        self._network: nn.Module | None = None
        self._fast: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._fast_batch = 0  # the one batch shape the compiled forward was built for
        self._exported: ExportedNetwork | None = None  # the CPU runtime running this model, if any
        self._canonical = torch.tensor([self.labels.index(e) for e in EMOTIONS], dtype=torch.long)

    # -- where the weights are (the spec says) -------------------------------------------------
    @classmethod
    def search_paths(cls) -> list[Path]:
        """Candidate files, best first; the first one that exists is used."""
        return cls.spec.search_paths()

    @classmethod
    def find_weights(cls) -> Path | None:
        return cls.spec.find_weights()

    @classmethod
    def where_hint(cls) -> str:
        """Where a user should put the weights file, in words."""
        return cls.spec.where_hint()

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

    def inference_graph(self) -> nn.Module:
        """The whole inference as one module, for export: (N, 48, 48) uint8 faces -> (N, 7)
        probabilities in `EMOTIONS` order (what `predict_proba` computes, in torch)."""
        return InferenceGraph(self)

    def enable_runtime(self, runtime: str, folder: Path) -> None:
        """Run inference in `runtime` (onnxruntime, openvino) from the export cached in `folder`,
        exporting it there first where it is missing or fails its checks (disfer.models.runtimes).
        Call it on a model whose weights are final."""
        from disfer.models.runtimes import load_exported

        self._exported = None  # the probe compares the export with this model's eager forward
        self._exported = load_exported(self, runtime, folder, torch.get_num_threads())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._fast or self.network)(x)

    def predict_proba(self, faces: np.ndarray, batch: int = 256) -> np.ndarray:
        """(N, 7) float32 probabilities in `EMOTIONS` order; rows sum to 1; 2-D even for N = 1."""
        arr = check_faces(faces)
        if self._exported is not None:
            return self._exported.predict_proba(arr)
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


class InferenceGraph(nn.Module):
    """An adapter's inference from uint8 faces to probabilities, as one module (for export)."""

    def __init__(self, model: FERModel):
        super().__init__()
        self.model = model
        self.network = model.network  # registered, so the export sees the weights as parameters

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.model.prepare(faces.unsqueeze(1).float())
        return torch.softmax(self.model.logits_to_canonical(self.network(x).float()), dim=1)
