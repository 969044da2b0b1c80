"""The distortion registry: name -> (function, default parameter per level).

A distortion is `fn(face, param, rng) -> face` on a (48, 48) uint8 face. Adding one (JPEG quality,
down-scaling, occlusion, ...) is one function and one `register(...)` call; build, playlists,
export and the analyses read the names and levels from the store, not from code.

Noise is drawn from a generator seeded per stimulus (`stimulus_seed`), so a rebuild with the same
build seed gives identical pixels, and any single stimulus can be re-rendered on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from disfer.errors import ConfigError

DistortionFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Distortion:
    name: str
    fn: DistortionFn
    levels: tuple[float, ...]   # the parameter of level 1, 2, ...; empty for `original`
    param_name: str             # what the parameter means, for help texts and manifests


DISTORTIONS: dict[str, Distortion] = {}


def register(name: str, fn: DistortionFn, levels: tuple[float, ...], param_name: str) -> None:
    DISTORTIONS[name] = Distortion(name, fn, tuple(float(v) for v in levels), param_name)


def _original(face: np.ndarray, param: float, rng: np.random.Generator) -> np.ndarray:
    return face.copy()


def gaussian_blur(face: np.ndarray, sigma: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """OpenCV's Gaussian blur, kernel size derived from sigma (ksize (0, 0)), border REFLECT_101.

    Identical to `cv2.GaussianBlur(face, (0, 0), sigma)`: REFLECT_101 is OpenCV's default border
    (`gfedcb|abcdefgh|gfedcba`), spelled out so the choice is visible.
    """
    import cv2

    return cv2.GaussianBlur(face, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def gaussian_noise(face: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of `sigma` grey levels, rounded and clipped to 0..255."""
    noisy = face.astype(np.float32) + rng.normal(0.0, sigma, face.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def salt_pepper(face: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each pixel is hit with probability p; a hit pixel becomes 255 or 0 with equal odds."""
    u = rng.random(face.shape)
    out = face.copy()
    out[u < p / 2] = 0
    out[(u >= p / 2) & (u < p)] = 255
    return out


register("original", _original, (), "none")
register("gaussian_blur", gaussian_blur, (0.8, 1.1, 1.4), "sigma")
register("gaussian_noise", gaussian_noise, (10, 20, 30), "sigma")
register("salt_pepper", salt_pepper, (0.02, 0.04, 0.06), "probability")

# The paper's order (original first), so tables and chart panels keep their place whatever the
# data's order; distortions registered later follow.
DISTORTION_ORDER: tuple[str, ...] = tuple(DISTORTIONS)


def distortion_rank(name: str) -> int:
    """Sort key of a distortion name: its place in DISTORTION_ORDER, unknown names last."""
    return DISTORTION_ORDER.index(name) if name in DISTORTION_ORDER else len(DISTORTION_ORDER)


def conditions(levels: dict[str, tuple[float, ...]] | None = None) -> list[tuple[str, int, float | None]]:
    """(distortion, level, param) of every version a build renders; `original` level 0 first.

    `levels` overrides the registry's parameters per distortion (also for distortions added by a
    user); a distortion given an empty tuple is left out.
    """
    chosen = {name: d.levels for name, d in DISTORTIONS.items()}
    for name, params in (levels or {}).items():
        if name not in DISTORTIONS:
            raise ConfigError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})")
        if name == "original":
            raise ConfigError("the original has no levels to set")
        chosen[name] = tuple(float(v) for v in params)
    out: list[tuple[str, int, float | None]] = [("original", 0, None)]
    for name, params in chosen.items():
        if name != "original":
            out.extend((name, i + 1, p) for i, p in enumerate(params))
    return out


def param_for(distortion: str, level: int) -> float | None:
    d = _get(distortion)
    if distortion == "original" or level == 0:
        return None
    if not 1 <= level <= len(d.levels):
        raise ConfigError(f"{distortion} has levels 1..{len(d.levels)}, not {level}")
    return d.levels[level - 1]


def stimulus_seed(build_seed: int, source_id: int, distortion: str, level: int) -> int:
    """A stable 63-bit seed from (build seed, source, distortion, level), the same on every machine."""
    key = f"{build_seed}|{source_id}|{distortion}|{level}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def render(face: np.ndarray, distortion: str, level: int, seed: int, param: float | None = None) -> np.ndarray:
    """One stimulus: `face` (48, 48) uint8 distorted at `level` (or at an explicit `param`)."""
    d = _get(distortion)
    if param is None:
        param = param_for(distortion, level)
    return d.fn(np.asarray(face, dtype=np.uint8), param, np.random.default_rng(seed))


def stimulus_id(source_id: int, distortion: str, level: int) -> str:
    return f"{source_id}-{distortion}-{level}"


def _get(name: str) -> Distortion:
    try:
        return DISTORTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})") from None
