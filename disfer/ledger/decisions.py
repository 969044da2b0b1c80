"""What a curation decision may say: statuses, labels, weights, and the checks between them.

Statuses a curator sets: confirmed (the original label stands), relabeled (the primary label
differs from the original), ambiguous (two or more emotions), excluded (not a usable face; no
labels). The primary label is the label with the largest weight (the first on a tie, or the
first given when there are no weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from disfer.emotions import parse_emotion_name
from disfer.errors import ConfigError

DECISION_STATUSES: tuple[str, ...] = ("confirmed", "relabeled", "ambiguous", "excluded")
# Statuses of the ground-truth view: a decision's, 'disputed' (curators disagree, no resolution)
# and 'uncurated' (used by review_queue and export for sources with no live decision).
VIEW_STATUSES: tuple[str, ...] = DECISION_STATUSES + ("disputed", "uncurated")
WEIGHT_TOLERANCE = 1e-6


def parse_labels(labels: object) -> list[str]:
    """Canonical emotion names from a list or a comma-separated string; no duplicates."""
    if labels is None:
        return []
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            name = parse_emotion_name(item)
        except ValueError as err:
            raise ConfigError(f"labels: {err}") from None
        if name in out:
            raise ConfigError(f"labels: {name!r} is given twice")
        out.append(name)
    return out


def parse_weights(weights: object, n_labels: int) -> list[float] | None:
    """Weights from a list or a comma-separated string: one per label, >= 0, summing to 1."""
    if weights is None:
        return None
    items = weights.split(",") if isinstance(weights, str) else list(weights)
    items = [w for w in items if not (isinstance(w, str) and not w.strip())]
    if not items:
        return None
    try:
        values = [float(w) for w in items]
    except (TypeError, ValueError):
        raise ConfigError(f"weights: {weights!r} are not numbers") from None
    if len(values) != n_labels:
        raise ConfigError(f"weights: {len(values)} weights for {n_labels} labels; give one per label")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"weights: {values} must be finite and >= 0")
    if abs(sum(values) - 1.0) > WEIGHT_TOLERANCE:
        raise ConfigError(f"weights: {values} sum to {sum(values):.6g}, not 1")
    return values


def primary_label(labels: list[str], weights: list[float] | None) -> str | None:
    """The label with the largest weight (first on a tie), or the first label."""
    if not labels:
        return None
    if weights is None:
        return labels[0]
    return labels[max(range(len(weights)), key=weights.__getitem__)]  # max keeps the first on a tie


def suggest_status(labels: list[str], weights: list[float] | None, original_label: str | None) -> str:
    """The status a decision with these labels would usually take (the page's default)."""
    if not labels:
        return "excluded"
    if len(labels) > 1:
        return "ambiguous"
    return "confirmed" if primary_label(labels, weights) == original_label else "relabeled"


@dataclass(frozen=True)
class Decision:
    """A validated decision, ready to append."""

    source_id: int
    labels: list[str]
    weights: list[float] | None
    status: str
    curator: str
    note: str | None


def validate_decision(source_id, labels, weights, status, curator, note=None,
                      original_label: str | None = None) -> Decision:
    """Check a decision's fields against each other (and the source's original label when given)."""
    try:
        source_id = int(source_id)
    except (TypeError, ValueError):
        raise ConfigError(f"source_id {source_id!r} is not an integer") from None
    status = str(status).strip().lower()
    if status not in DECISION_STATUSES:
        raise ConfigError(f"unknown status {status!r} (expected one of {', '.join(DECISION_STATUSES)})")
    curator = (curator or "").strip()
    if not curator:
        raise ConfigError("a curator name is required")
    names = parse_labels(labels)
    w = parse_weights(weights, len(names))
    if status == "excluded":
        if names:
            raise ConfigError("status 'excluded' takes no labels (the face is not usable)")
    elif not names:
        raise ConfigError(f"status {status!r} needs at least one label")
    if status == "ambiguous" and len(names) < 2:
        raise ConfigError("status 'ambiguous' needs two or more labels")
    primary = primary_label(names, w)
    if original_label is not None and status == "confirmed" and primary != original_label:
        raise ConfigError(f"source {source_id}: status 'confirmed' keeps the original label "
                          f"{original_label!r}, but the primary label is {primary!r}; use 'relabeled'")
    if original_label is not None and status == "relabeled" and primary == original_label:
        raise ConfigError(f"source {source_id}: status 'relabeled' but the primary label is the "
                          f"original {original_label!r}; use 'confirmed'")
    note = note.strip() if isinstance(note, str) and note.strip() else None
    return Decision(source_id, names, w, status, curator, note)
