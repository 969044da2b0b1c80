"""48x48 grey faces: the one in-memory and on-disk form every part of DisFER Studio shares."""

from __future__ import annotations

import numpy as np

SIZE = 48
N_PIXELS = SIZE * SIZE


def to_blob(face: np.ndarray) -> bytes:
    """A (48, 48) uint8 face as the 2,304 raw bytes the store keeps."""
    arr = np.asarray(face)
    if arr.shape != (SIZE, SIZE) or arr.dtype != np.uint8:
        raise ValueError(f"expected a ({SIZE}, {SIZE}) uint8 face, got {arr.shape} {arr.dtype}")
    return arr.tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """The (48, 48) uint8 face stored as raw bytes."""
    arr = np.frombuffer(blob, dtype=np.uint8)
    if arr.size != N_PIXELS:
        raise ValueError(f"expected {N_PIXELS} bytes, got {arr.size}")
    return arr.reshape(SIZE, SIZE)


def stack_blobs(blobs: list[bytes]) -> np.ndarray:
    """Many stored faces as one (N, 48, 48) uint8 array, without a copy per face."""
    if not blobs:
        return np.zeros((0, SIZE, SIZE), dtype=np.uint8)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), SIZE, SIZE)
