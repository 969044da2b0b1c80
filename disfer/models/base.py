"""The model contract, as plain data: what a model is called, where its weights live, what it eats.

A model takes a batch of 48x48 grey uint8 faces and returns an (N, 7) float32 probability array
in `EMOTIONS` order. A `ModelSpec` says everything the registry needs to list a family (its
description, its weights file and where that file is searched) and names the adapter class that
runs it as a "module:Class" path, imported only when a model is loaded. Nothing here imports torch,
so listing models, and every command that runs none, stays fast; the adapters' shared torch
machinery is in `disfer.models.torch_base`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disfer.images import SIZE

# FER-2013's class order, which all three pre-trained networks emit.
FER2013_ORDER: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def check_faces(faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8, accepting one (48, 48) face as N = 1."""
    arr = np.asarray(faces)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (SIZE, SIZE) or arr.dtype != np.uint8:
        raise ValueError(f"expected faces of shape (N, {SIZE}, {SIZE}) uint8, got {arr.shape} {arr.dtype}")
    return arr


def _nowhere() -> list[Path]:
    return []


@dataclass(frozen=True)
class ModelSpec:
    """One model family: plain data, so listing it reads no weights and imports no network code."""

    family: str
    description: str
    adapter: str                                         # "module:Class", imported by load_model
    weights_file: str                                    # the exact file name a user must provide
    weights_env: str                                     # environment variable naming the file
    default_paths: Callable[[], list[Path]] = _nowhere   # places searched after $weights_env
    hint: Callable[[ModelSpec], str] | None = None       # where to put the file, in words

    def search_paths(self) -> list[Path]:
        """Candidate files, best first; the first one that exists is used."""
        env = os.environ.get(self.weights_env)
        return ([Path(env)] if env else []) + self.default_paths()

    def find_weights(self) -> Path | None:
        return next((p for p in self.search_paths() if p.is_file()), None)

    def where_hint(self) -> str:
        """Where a user should put the weights file, in words."""
        if self.hint is not None:
            return self.hint(self)
        paths = self.search_paths()
        target = paths[0] if paths else Path(self.weights_file)
        return f"put {self.weights_file} at {target} (or set {self.weights_env} to its path)"

    def adapter_class(self) -> type:
        """The class that runs this family (importing it imports torch)."""
        module, _, name = self.adapter.partition(":")
        return getattr(importlib.import_module(module), name)
