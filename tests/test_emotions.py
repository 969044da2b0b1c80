import pytest

from disfer.emotions import EMOTIONS, FER2013_CODES, parse_emotion


def test_canonical_order_is_alphabetical():
    assert list(EMOTIONS) == sorted(EMOTIONS)
    assert set(FER2013_CODES) == set(EMOTIONS)


@pytest.mark.parametrize("given, expected", [
    ("0", "anger"), ("3", "happiness"), ("4", "sadness"), ("6", "neutral"),
    ("happy", "happiness"), ("Sad", "sadness"), (" angry ", "anger"), ("surprised", "surprise"),
])
def test_parse(given, expected):
    assert parse_emotion(given) == expected


@pytest.mark.parametrize("bad", ["contempt", "7", "", "joyful?"])
def test_unknown(bad):
    with pytest.raises(ValueError, match="unknown emotion"):
        parse_emotion(bad)
