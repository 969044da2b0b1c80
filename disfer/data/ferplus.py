"""The FERPlus file format (Microsoft's `fer2013new.csv`): one home for its columns.

The ingest reads this layout and the curated export writes it, so both take the names from here.
FERPlus has ten vote-count columns: the seven emotions (spelt as in EMOTIONS) and `contempt`,
`unknown` and `NF` (not a face). The count columns' names are also the categories stored in
`crowd_counts` for crowd 'ferplus'.
"""

from __future__ import annotations

# The ten vote-count columns, in the file's order, spelt as in its header.
FERPLUS_EMOTION_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger",
                                            "disgust", "fear", "contempt", "unknown", "NF")
# The whole header, spelt as in the file: the split, the image's name, then the counts.
FERPLUS_HEADER: tuple[str, ...] = ("Usage", "Image name", *FERPLUS_EMOTION_COLUMNS)
