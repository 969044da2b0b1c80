"""The demo's simulated crowd: a small generative model of how people label distorted faces.

The model, for rater r voting on stimulus s (source face i shown with distortion d at level l):

1. The face has a true expression mixture m_i over EMOTIONS (disfer.demo.faces).
2. The distortion hides part of the expression: the percept is
   m' = (1 - h) * m_i + h * CANT_TELL, with h = HIDDEN[d][l] (people barely notice salt-and-pepper
   noise, lose a little to blur and most to strong Gaussian noise).
3. A clear look at m' gives the answer distribution p = normalize(m' ** SHARPNESS) @ CONFUSION:
   the dominant emotion wins more often than its share, and the pairs people mix up (fear and
   surprise, anger and disgust, sadness and neutral) leak into each other. An ambiguous face
   splits its votes.
4. Rater r has a reliability rho_r ~ Beta(a, b) and a personal guessing habit g_r ~ Dirichlet
   around GUESS: on each trial they answer from p with probability rho_r, otherwise from g_r.
5. Each rater sees every stimulus of one playlist (the study's design: ~50 raters per playlist,
   so ~50 votes per stimulus), in playlist order; the response time grows with the ambiguity of p.

The original labels of the demo dataset are right for about four sources in five; the rest are
deliberately wrong (`mislabel`), so the label audit has something true to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.errors import ConfigError

# Share of the expression hidden by each distortion at levels 1..3 (the original hides nothing).
HIDDEN: dict[str, tuple[float, ...]] = {
    "original": (0.0,),
    "salt_pepper": (0.03, 0.05, 0.08),
    "gaussian_blur": (0.10, 0.22, 0.38),
    "gaussian_noise": (0.15, 0.38, 0.65),
}

# What a hidden expression looks like to people: mostly "nothing special", i.e. neutral or sad.
CANT_TELL = np.array([0.08, 0.04, 0.08, 0.06, 0.46, 0.20, 0.08])

# Guessing habits when a rater does not really look: a little of everything, neutral most.
GUESS = np.array([0.14, 0.08, 0.13, 0.17, 0.22, 0.14, 0.12])


LEAK_SCALE = 0.5


def _confusion() -> np.ndarray:
    """Row = perceived emotion, column = answered emotion; rows sum to 1."""
    leaks = {
        ("anger", "disgust"): 0.10, ("disgust", "anger"): 0.18, ("fear", "surprise"): 0.16,
        ("surprise", "fear"): 0.08, ("sadness", "neutral"): 0.08, ("neutral", "sadness"): 0.08,
        ("fear", "sadness"): 0.06, ("anger", "neutral"): 0.04, ("disgust", "sadness"): 0.06,
        ("happiness", "neutral"): 0.03, ("neutral", "anger"): 0.03, ("sadness", "fear"): 0.04,
    }
    c = np.zeros((len(EMOTIONS), len(EMOTIONS)))
    for (seen, said), share in leaks.items():
        c[EMOTION_INDEX[seen], EMOTION_INDEX[said]] = share * LEAK_SCALE
    c[np.diag_indices_from(c)] = 1 - c.sum(axis=1)
    return c


CONFUSION = _confusion()


@dataclass(frozen=True)
class CrowdModel:
    """Parameters of the simulated crowd (see the module docstring for the model)."""

    raters_per_playlist: int = 50
    reliability_a: float = 12.0      # Beta(a, b) of rater reliability: mean a / (a + b)
    reliability_b: float = 1.2
    sharpness: float = 5.0           # > 1: the dominant emotion of a percept wins more than its share
    guess_concentration: float = 6.0  # higher: raters' guessing habits are more alike
    mean_rt_ms: float = 1800.0


def answer_distribution(mixture: np.ndarray, distortion: str, level: int, sharpness: float) -> np.ndarray:
    """p(answer) of a fully attentive rater for a face of `mixture` seen through a distortion."""
    try:
        hidden = HIDDEN[distortion][max(level, 1) - 1]
    except (KeyError, IndexError):
        raise ConfigError(f"the demo crowd knows no distortion {distortion!r} at level {level}") from None
    percept = (1 - hidden) * np.asarray(mixture, dtype=float) + hidden * CANT_TELL
    sharpened = percept ** sharpness
    return (sharpened / sharpened.sum()) @ CONFUSION


def mislabel(emotions: list[str], rate: float, rng: np.random.Generator) -> list[str]:
    """The dataset's "original labels": the shown emotion, except for about `rate` of the faces.

    The wrong labels are the shown emotions of the other mislabelled faces, shuffled so that none
    keeps its own: every label class keeps its size (a balanced study can still draw 12 per class),
    yet about one face in five is labelled as an emotion it does not show.
    """
    labels = np.asarray(emotions, dtype=object)
    n_wrong = int(round(rate * len(labels)))
    if n_wrong < 2 or len(set(emotions)) < 2:
        return list(labels)
    for _ in range(1000):
        chosen = rng.choice(len(labels), size=n_wrong, replace=False)
        moved = rng.permutation(labels[chosen])
        if np.all(moved != labels[chosen]):
            labels[chosen] = moved
            return list(labels)
    raise ValueError("cannot mislabel: the faces show too few different emotions")


def simulate_votes(stimuli: pd.DataFrame, mixtures: dict[int, np.ndarray], playlists: pd.DataFrame,
                   seed: int = 0, model: CrowdModel = CrowdModel()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Votes of a simulated crowd through the playlist design.

    stimuli: stimulus_id, source_id, distortion, level; mixtures: source_id -> true mixture;
    playlists: playlist_id, stimulus_id, position. Returns (votes: participant_id, stimulus_id,
    emotion, rt_ms; participants: participant_id, playlist_id, reliability, age, gender).
    """
    rng = np.random.default_rng(seed)
    info = stimuli.set_index("stimulus_id")
    design = playlists.sort_values(["playlist_id", "position"])
    answers = {
        sid: answer_distribution(mixtures[int(row.source_id)], row.distortion, int(row.level), model.sharpness)
        for sid, row in info.iterrows()
    }
    vote_parts, people = [], []
    for playlist_id, group in design.groupby("playlist_id", sort=True):
        ids = group["stimulus_id"].tolist()
        p = np.stack([answers[sid] for sid in ids])                          # (S, 7)
        n = model.raters_per_playlist
        reliability = rng.beta(model.reliability_a, model.reliability_b, size=n)
        guess = rng.dirichlet(GUESS * model.guess_concentration * len(EMOTIONS), size=n)   # (R, 7)
        attend = rng.random((n, len(ids))) < reliability[:, None]
        probs = np.where(attend[..., None], p[None, :, :], guess[:, None, :])  # (R, S, 7)
        cumulative = probs.cumsum(axis=2)
        draws = rng.random((n, len(ids), 1))
        chosen = np.minimum((draws > cumulative).sum(axis=2), len(EMOTIONS) - 1)
        entropy = -(p * np.log(p + 1e-12)).sum(axis=1)                       # ambiguous: slower
        rt = model.mean_rt_ms * (0.7 + 0.3 * entropy)[None, :] * rng.lognormal(0, 0.35, (n, len(ids)))
        pids = [f"demo-{int(playlist_id):02d}-{k + 1:03d}" for k in range(n)]
        vote_parts.append(pd.DataFrame({
            "participant_id": np.repeat(pids, len(ids)),
            "stimulus_id": np.tile(ids, n),
            "emotion": np.asarray(EMOTIONS)[chosen.ravel()],
            "rt_ms": np.round(rt.ravel(), 1),
        }))
        people.append(pd.DataFrame({
            "participant_id": pids, "playlist_id": int(playlist_id), "reliability": reliability,
            "age": rng.integers(18, 70, size=n), "gender": rng.choice(["female", "male"], size=n),
        }))
    return pd.concat(vote_parts, ignore_index=True), pd.concat(people, ignore_index=True)
