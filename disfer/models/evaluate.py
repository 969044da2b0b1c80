"""Check a model on any labelled set, without touching the store.

Accepts a FER-2013-format CSV (`emotion,pixels[,Usage]`, emotion as a FER-2013 code or a name)
or an image-folder tree (`<root>/<emotion>/<image>`, any size, converted to 48x48 grey).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from disfer.csvio import open_csv, require_columns
from disfer.data.ingest import IMAGE_SUFFIXES, MAX_IMAGE_BYTES, parse_pixels, read_face_image
from disfer.emotions import EMOTION_INDEX, EMOTIONS, parse_emotion, parse_emotion_name
from disfer.errors import InputError
from disfer.images import SIZE


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
    """(faces (N, 48, 48) uint8, labels (N,) indices into EMOTIONS) from a FER-2013 CSV, read by
    the same strict rules as `disfer ingest fer2013` (disfer.csvio, ingest.parse_pixels)."""
    path = Path(path)
    header, rows = open_csv(path)
    cols = require_columns(path, header, ("emotion", "pixels"))
    usage = cols.get("usage")
    if split is not None and usage is None:
        raise InputError(path, f"--split {split} given but the file has no Usage column", row=1)
    faces, labels = [], []
    for row, fields in rows:
        if len(fields) != len(header):
            raise InputError(path, f"expected {len(header)} fields, got {len(fields)}", row)
        if split is not None and fields[usage].strip() != split:
            continue
        try:
            labels.append(EMOTION_INDEX[parse_emotion(fields[cols["emotion"]])])
        except ValueError as err:
            raise InputError(path, str(err), row=row) from None
        faces.append(parse_pixels(fields[cols["pixels"]], path, row).reshape(SIZE, SIZE))
    if not faces:
        raise InputError(path, f"no rows with Usage = {split!r}" if split is not None else "no data rows")
    return np.stack(faces), np.asarray(labels, np.int64)


def load_image_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Faces and labels from `<root>/<emotion>/<image>`; the folder name is the label. Images are
    read as `disfer ingest folder` reads them (size checked from the header before decoding)."""
    root = Path(root)
    faces, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = EMOTION_INDEX[parse_emotion_name(folder.name)]
        except ValueError as err:
            raise InputError(folder, str(err)) from None
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
                continue
            if file.stat().st_size > MAX_IMAGE_BYTES:
                raise InputError(file, f"{file.stat().st_size:,} bytes, above the limit of {MAX_IMAGE_BYTES:,}")
            faces.append(read_face_image(file.read_bytes(), file))
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
