"""Where a model looks: Grad-CAM and Gradient SHAP maps for one face, for any model.

Both return a (48, 48) float map over the face's own pixels, so a curator can see whether the
model used the mouth and eyes or the hair and background ("What makes a smile?").
Grad-CAM explains the model's last convolutional layer (coarse, class-discriminative); Gradient
SHAP attributes the logit to input pixels against black and mean-grey baselines (captum's
algorithm, computed here with a random generator of its own; tests compare the two).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from disfer.emotions import EMOTION_INDEX, EMOTIONS, parse_emotion_name
from disfer.images import SIZE
from disfer.models.base import check_faces

if TYPE_CHECKING:
    import torch

    from disfer.models.torch_base import FERModel

# torch is imported inside the functions that compute maps: the Saliency page imports this module
# to draw its first elements, and torch takes seconds to import on a fresh server.

METHODS = {"gradcam": "Grad-CAM", "gradient_shap": "Gradient SHAP"}  # column name -> what users read
# Gradient SHAP's samples: 16 is the fast default (0.1 s for the mini-Xception on one CPU core);
# more samples give a smoother map of the same shape (the test against captum uses 2,000).
SHAP_SAMPLES = 16
SHAP_SAMPLE_CHOICES = (8, 16, 32, 64, 128)


def _target_index(model: FERModel, x: torch.Tensor, target: str | int | None) -> int:
    import torch

    if target is None:
        with torch.no_grad():
            logits = model.logits_to_canonical(model.network(model.prepare(x, exact=False)))
        return int(logits.argmax(dim=1)[0])
    if isinstance(target, str):
        return EMOTION_INDEX[parse_emotion_name(target)]
    return int(target)


def _face_tensor(model: FERModel, face: np.ndarray) -> torch.Tensor:
    return model._to_device(check_faces(face)[:1])


def gradcam(model: FERModel, face: np.ndarray, target: str | int | None = None) -> np.ndarray:
    """Grad-CAM of `target` (an emotion, default the predicted one) at the last conv layer.

    Returns a (48, 48) map scaled to 0..1 (all zeros when no region supports the class).
    """
    import torch
    import torch.nn.functional as F

    net = model.network
    x = _face_tensor(model, face)
    layer = model.target_layer()
    seen: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda mod, inp, out: seen.__setitem__("a", out))
    try:
        with torch.enable_grad():
            index = _target_index(model, x, target)
            logits = model.logits_to_canonical(net(model.prepare(x, exact=False)))
            activation = seen["a"]
            (grad,) = torch.autograd.grad(logits[0, index], activation)
    finally:
        handle.remove()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True)).detach().float()
    cam = F.interpolate(cam, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).cpu().numpy().astype(np.float32)


def gradient_shap(model: FERModel, face: np.ndarray, target: str | int | None = None,
                  n_samples: int = SHAP_SAMPLES, stdev: float = 8.0, seed: int = 0) -> np.ndarray:
    """Gradient SHAP attributions of `target` to the 48x48 input pixels (signed, in logit units).

    As captum's GradientShap: each of `n_samples` samples draws a baseline (a black face or a
    face of the image's mean grey), adds Gaussian noise of `stdev` grey levels to the face, and
    takes the gradient at a uniformly drawn point between the baseline and the noisy face; the
    map is the mean of gradient x (noisy face - baseline). The draws come from a generator of
    their own seeded with `seed`, so a seed always gives the same map, and torch's global
    generator (which a training run in another session may be drawing from) is left untouched.
    """
    import torch

    model.load()
    x = _face_tensor(model, face)
    index = _target_index(model, x, target)
    baselines = torch.cat([torch.zeros_like(x), torch.full_like(x, float(x.mean()))])
    # Drawn on the CPU, so a seed gives the same samples whatever the model's device.
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(baselines), (n_samples,), generator=generator)
    noise = torch.randn((n_samples, *x.shape[1:]), generator=generator) * stdev
    alpha = torch.rand((n_samples, 1, 1, 1), generator=generator)
    base = baselines[pick.to(x.device)]
    noisy = x + noise.to(x.device)
    points = (base + alpha.to(x.device) * (noisy - base)).requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits_to_canonical(model.network(model.prepare(points, exact=False)))
        # Samples are independent in eval mode, so the gradient of the sum is each one's own.
        (grad,) = torch.autograd.grad(logits[:, index].sum(), points)
    attr = ((noisy - base) * grad).mean(dim=0)
    return attr[0].detach().float().cpu().numpy().astype(np.float32)


def explained_class(proba: np.ndarray, target: str | None) -> tuple[str, str]:
    """(the model's answer, the class the maps explain) for one face's probabilities (EMOTIONS
    order); `target` None explains the answer."""
    answer = EMOTIONS[int(np.argmax(proba))]
    return answer, answer if target is None else parse_emotion_name(target)


def explanation_sentence(model_id: str, stimulus_id: str, proba: np.ndarray, target: str | None) -> str:
    """What the maps show, in words: the model's answer and the class explained, each with its
    probability, e.g. "minixception answers sadness (41%) on 3-original-0; the maps explain
    surprise (12%), not its answer." Plain text (the caller escapes it for Markdown)."""
    answer, explained = explained_class(proba, target)
    said = f"{model_id} answers {answer} ({proba[EMOTION_INDEX[answer]]:.0%}) on {stimulus_id}; "
    if explained == answer:
        return said + f"the maps explain {answer}, its answer."
    return said + f"the maps explain {explained} ({proba[EMOTION_INDEX[explained]]:.0%}), not its answer."


def _present(cam: np.ndarray | None, shap: np.ndarray | None) -> dict[str, np.ndarray]:
    """The maps computed, by column name, in METHODS order (a map not asked for is None)."""
    maps = {name: a for name, a in zip(METHODS, (cam, shap), strict=True) if a is not None}
    for name, a in maps.items():
        if np.shape(a) != (SIZE, SIZE):
            raise ValueError(f"{name} has shape {np.shape(a)}, not ({SIZE}, {SIZE})")
    return maps


def maps_table(face: np.ndarray, cam: np.ndarray | None, shap: np.ndarray | None) -> pd.DataFrame:
    """The face and its maps, one row per pixel: row, column (0..47, row 0 at the top), grey
    (0..255), gradcam (0..1) and gradient_shap (signed, logit units), row by row; a map that was
    not computed (None) has no column."""
    rows, cols = np.indices((SIZE, SIZE))
    if np.shape(face) != (SIZE, SIZE):
        raise ValueError(f"grey has shape {np.shape(face)}, not ({SIZE}, {SIZE})")
    maps = _present(cam, shap)
    return pd.DataFrame({"row": rows.ravel(), "column": cols.ravel(),
                         "grey": np.asarray(face, np.uint8).ravel(),
                         **{name: np.asarray(a, np.float32).ravel() for name, a in maps.items()}})


def maps_npy(cam: np.ndarray | None, shap: np.ndarray | None) -> bytes:
    """The maps computed as one .npy file: float32 (k, 48, 48), Grad-CAM first when present,
    then Gradient SHAP (`maps_npy_layout` says it in words). Written without pickle, so
    `np.load(f)` (allow_pickle=False, its default) reads it."""
    out = io.BytesIO()
    np.save(out, np.stack([np.asarray(a, np.float32) for a in _present(cam, shap).values()]),
            allow_pickle=False)
    return out.getvalue()


def maps_npy_layout(cam: np.ndarray | None, shap: np.ndarray | None) -> str:
    """The .npy file's layout in words, e.g. "float32 (2, 48, 48): Grad-CAM, then Gradient SHAP"."""
    maps = _present(cam, shap)
    return f"float32 ({len(maps)}, {SIZE}, {SIZE}): " + ", then ".join(METHODS[m] for m in maps)


def stimulus_face(store, stimulus_id: str) -> np.ndarray:
    """The (48, 48) face of one stimulus in the store."""
    from disfer.errors import ConfigError
    from disfer.images import from_blob

    with store.read() as con:
        row = con.execute("SELECT pixels FROM stimuli WHERE stimulus_id = ?", [stimulus_id]).fetchone()
    if row is None:
        raise ConfigError(f"unknown stimulus {stimulus_id!r} (ids look like 17-gaussian_blur-2)")
    return from_blob(row[0])


def overlay_png(face: np.ndarray, saliency: np.ndarray, signed: bool = False, scale: int = 4) -> bytes:
    """PNG bytes: the face and the map laid over it, side by side, enlarged `scale` times."""
    import cv2

    m = saliency.astype(np.float32)
    if signed:  # red where the pixel speaks for the class, blue where against, grey at zero
        peak = float(np.abs(m).max()) or 1.0
        m = (m / peak + 1) / 2
    else:
        peak = float(m.max()) or 1.0
        m = np.clip(m / peak, 0, 1)
    heat = cv2.applyColorMap((m * 255).astype(np.uint8),
                             cv2.COLORMAP_COOLWARM if signed and hasattr(cv2, "COLORMAP_COOLWARM")
                             else cv2.COLORMAP_JET)
    grey = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    blended = cv2.addWeighted(grey, 0.5, heat, 0.5, 0)
    image = np.concatenate([grey, blended], axis=1)
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", image)
    return buf.tobytes()


def write_saliency_pngs(store, model_id: str, stimulus_id: str, out_dir, target=None,
                        device: str = "auto", weights_path=None, n_samples: int = SHAP_SAMPLES) -> list:
    """Grad-CAM and Gradient SHAP PNGs of one stimulus, inside `out_dir`; returns the paths
    written (through disfer.outfiles: a temporary file replaced into place, no link followed)."""
    from disfer import outfiles
    from disfer.models import load_model

    face = stimulus_face(store, stimulus_id)
    model = load_model(model_id, device=device, store=store, weights_path=weights_path)
    out = outfiles.output_folder(out_dir)
    label = outfiles.safe_name(target or "predicted", "emotion")
    stem = f"{outfiles.safe_name(stimulus_id, 'stimulus id')}_{outfiles.safe_name(model_id, 'model id')}_{label}"
    paths = []
    for name, values, signed in (("gradcam", gradcam(model, face, target), False),
                                 ("gradshap", gradient_shap(model, face, target, n_samples=n_samples), True)):
        paths.append(outfiles.write_bytes(out, f"{stem}_{name}.png", overlay_png(face, values, signed=signed)))
    return paths
