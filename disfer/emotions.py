"""The canonical emotions and every spelling we accept for them."""

from __future__ import annotations

# The paper's alphabetical order; the column order of every probability array and table.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
EMOTION_INDEX: dict[str, int] = {e: i for i, e in enumerate(EMOTIONS)}

# FER-2013's integer codes (Kaggle fer2013.csv): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
# 5 surprise, 6 neutral.
FER2013_CODES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

_SYNONYMS = {
    "anger": "anger", "angry": "anger", "mad": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness",
    "neutral": "neutral", "none": "neutral",
    "sadness": "sadness", "sad": "sadness",
    "surprise": "surprise", "surprised": "surprise",
}


def parse_emotion(value: object) -> str:
    """Canonical name for an emotion given as a name, a common spelling or a FER-2013 code.

    Raises ValueError naming the value when it is none of those.
    """
    text = str(value).strip().lower()
    if text in _SYNONYMS:
        return _SYNONYMS[text]
    if text.isascii() and text.isdigit() and int(text) < len(FER2013_CODES):
        return FER2013_CODES[int(text)]
    raise ValueError(f"unknown emotion {value!r} (expected one of {', '.join(EMOTIONS)})")


def parse_emotion_name(value: object) -> str:
    """Like parse_emotion, but numeric codes are refused (votes and labels given as words)."""
    text = str(value).strip().lower()
    if text in _SYNONYMS:
        return _SYNONYMS[text]
    raise ValueError(f"unknown emotion {value!r} (expected one of {', '.join(EMOTIONS)})")
