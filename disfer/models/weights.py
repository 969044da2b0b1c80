"""Loading weight files safely, checking them against a network, and fingerprinting them.

Nothing here unpickles arbitrary objects: `.pth` checkpoints go through
`torch.load(weights_only=True)`, fine-tuned variants are safetensors files. Every failure names
the file, so a user who put the wrong download in place knows which file to replace.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from disfer.errors import ConfigError

# Fingerprints of large files (the RMN checkpoint is 550 MB) are cached per process, keyed on
# what changes when the file is replaced.
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def fingerprint(path: str | Path) -> str:
    """SHA-256 of a weights file, the key under which its predictions are cached."""
    p = check_weights_file(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]


def check_weights_file(path: str | Path) -> Path:
    """`path` as a weights file that exists and is a regular file, or one clear ConfigError."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a weights file")
    if not p.exists():
        raise ConfigError(f"{p}: weights file not found")
    if not p.is_file():
        raise ConfigError(f"{p}: not a regular file, so not a weights file")
    return p


def _numpy_data_types() -> list:
    # Training scripts (rmn's among them) store metrics as numpy scalars next to the weights.
    # These rebuild plain numbers and dtypes, never run code, so the weights-only unpickler may
    # accept them.
    import numpy as np

    found = [np.dtype, np._core.multiarray.scalar]
    found += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool")]
    return found


_NUMPY_DATA = _numpy_data_types()


def load_torch_state(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict from a `.pth` checkpoint, refusing anything but tensors and plain values.

    `key` picks a sub-dictionary (RMN's checkpoints keep the weights under "net").
    """
    p = check_weights_file(path)
    try:
        with torch.serialization.safe_globals(_NUMPY_DATA):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # truncated zip, foreign pickle, random bytes, ...
        # torch's own message ends in advice to set weights_only=False, i.e. to run the file's
        # code: never ours to give.
        raise ConfigError(f"{p}: not a readable PyTorch weights file (not a checkpoint of plain "
                          "tensors)") from None
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise ConfigError(f"{p}: checkpoint has no {key!r} entry; is this the right file?")
        obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{p}: does not hold a state dict of tensors")
    return obj


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    p = check_weights_file(path)
    try:
        return load_file(str(p), device="cpu")
    except Exception as err:
        raise ConfigError(f"{p}: not a readable safetensors file ({str(err)[:200]})") from None


def load_state_file(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict from either format, chosen by the file's extension."""
    if str(path).endswith(".safetensors"):
        return load_safetensors(path)
    return load_torch_state(path, key)


def apply_state(network: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Load `state` into `network`, or say (naming the file) how the architectures differ."""
    own = network.state_dict()
    # BatchNorm's step counter matters only to training from scratch; Keras files lack it.
    state = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
             for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[0]})")
        raise ConfigError(f"{path}: weights do not fit the {type(network).__name__} architecture: "
                          + "; ".join(parts))
    network.load_state_dict(state)
    return network


def unshared_state(state: dict) -> dict[str, torch.Tensor]:
    """A state dict as safetensors can store it: on the CPU, contiguous, no two tensors sharing
    memory. RMN registers some modules under two names (its masks' `downsample1` is also
    `conv1.downsample`), and safetensors refuses such a pair; each name gets its own copy, and
    loading fills both names alike."""
    out, seen = {}, set()
    for key, value in state.items():
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(ptr)
        out[key] = t
    return out


def save_safetensors(network: nn.Module, path: str | Path) -> Path:
    """Write a network's weights as a safetensors file (the format of fine-tuned variants).

    Written to a temporary name first and renamed, so an interrupted save never leaves a
    truncated file where a loader would look.
    """
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    save_file(unshared_state(network.state_dict()), str(tmp))
    os.replace(tmp, p)
    return p
