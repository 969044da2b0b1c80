"""Check a model on any labelled set, without touching the store.

Accepts a FER-2013-format CSV (`emotion,pixels[,Usage]`, emotion as a FER-2013 code or a name)
or an image-folder tree (`<root>/<emotion>/<image>`, any size, converted to 48x48 grey).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from disfer.emotions import EMOTION_INDEX, EMOTIONS, parse_emotion, parse_emotion_name
from disfer.errors import InputError
from disfer.images import N_PIXELS, SIZE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".webp"}


@dataclass
class Evaluation:
    model: str
    n: int
    accuracy: float
    recall: dict[str, float]        # per true emotion; NaN where the set has none of it
    confusion: list[list[int]]      # rows: true emotion, columns: predicted, in EMOTIONS order

    def to_dict(self) -> dict:
        out = asdict(self)
        out["recall"] = {k: (None if np.isnan(v) else v) for k, v in self.recall.items()}
        return out


def load_fer2013_csv(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(faces (N, 48, 48) uint8, labels (N,) indices into EMOTIONS) from a FER-2013 CSV."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"not a readable CSV file ({str(err).splitlines()[0]})") from None
    for column in ("emotion", "pixels"):
        if column not in frame.columns:
            raise InputError(path, f"no {column!r} column (expected emotion,pixels[,Usage])", row=1)
    if split is not None:
        if "Usage" not in frame.columns:
            raise InputError(path, f"--split {split} given but the file has no Usage column", row=1)
        frame = frame[frame["Usage"] == split]
        if frame.empty:
            raise InputError(path, f"no rows with Usage = {split!r}")
    faces = np.empty((len(frame), SIZE, SIZE), np.uint8)
    labels = np.empty(len(frame), np.int64)
    for i, (row, emotion, pixels) in enumerate(zip(frame.index, frame["emotion"], frame["pixels"], strict=True)):
        where = int(row) + 2  # 1-based, header is row 1
        try:
            labels[i] = EMOTION_INDEX[parse_emotion(emotion)]
        except ValueError as err:
            raise InputError(path, str(err), row=where) from None
        values = pixels.split()
        if len(values) != N_PIXELS:
            raise InputError(path, f"{len(values)} pixel values, expected {N_PIXELS}", row=where)
        try:
            numbers = np.asarray(values, dtype=np.int32)
        except ValueError:
            raise InputError(path, "pixel values must be integers 0..255", row=where) from None
        if numbers.min() < 0 or numbers.max() > 255:
            raise InputError(path, "pixel values must be integers 0..255", row=where)
        faces[i] = numbers.reshape(SIZE, SIZE)
    return faces, labels


def load_image_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Faces and labels from `<root>/<emotion>/<image>`; the folder name is the label."""
    import cv2

    root = Path(root)
    faces, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = EMOTION_INDEX[parse_emotion_name(folder.name)]
        except ValueError as err:
            raise InputError(folder, str(err)) from None
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imdecode(np.fromfile(file, np.uint8), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise InputError(file, "not a readable image")
            if image.shape != (SIZE, SIZE):
                image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            faces.append(image)
            labels.append(label)
    if not faces:
        raise InputError(root, "no images found in <root>/<emotion>/ folders")
    return np.stack(faces), np.asarray(labels, np.int64)


def load_labelled(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        return load_image_folder(path)
    return load_fer2013_csv(path, split)


def score(model_id: str, probs: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracy, per-emotion recall and the confusion matrix of predictions against labels."""
    predicted = probs.argmax(axis=1)
    k = len(EMOTIONS)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diag(confusion) / support
    return Evaluation(model=model_id, n=int(len(labels)),
                      accuracy=float((predicted == labels).mean()) if len(labels) else float("nan"),
                      recall={e: float(r) for e, r in zip(EMOTIONS, recall, strict=True)},
                      confusion=confusion.astype(int).tolist())


def evaluate_file(model_id: str, path: str | Path, split: str | None = None, device: str = "auto",
                  batch: int = 256, store=None, model=None) -> Evaluation:
    """Run a model over a labelled file or folder and score it (the store is not written)."""
    from disfer.models import load_model

    faces, labels = load_labelled(path, split)
    model = model or load_model(model_id, device=device, store=store)
    return score(model_id, model.predict_proba(faces, batch=batch), labels)
