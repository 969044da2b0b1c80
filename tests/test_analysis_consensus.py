import numpy as np
from analysis_fixtures import insert_study, random_study

from disfer.analysis import dawid_skene_labels, load_study, majority_vote
from disfer.analysis.consensus import _crowdkit, dawid_skene


def test_agrees_with_a_clear_majority(store):
    random_study(store, n_sources=8, raters_per_playlist=9, seed=9)
    study = load_study(store)
    ds = dawid_skene_labels(study).set_index("stimulus_id")
    mv = majority_vote(study).set_index("stimulus_id")
    clear = mv[mv["majority_share"] >= 0.6].index
    assert len(clear) >= 10
    assert (ds.loc[clear, "dawid_skene"] == mv.loc[clear, "majority"]).all()
    assert ((ds["ds_confidence"] > 0) & (ds["ds_confidence"] <= 1)).all()


def test_outvotes_raters_who_always_give_the_same_answer(store):
    # Two reliable raters and three who answer 'neutral' to everything. Where the reliable pair is
    # outvoted, the plain majority says neutral; Dawid-Skene learns that the three are uninformative.
    emotions = ["anger", "fear", "happiness", "sadness", "surprise", "disgust"]
    votes, labels = [], {}
    for i in range(30):
        stim = f"{i + 1}-original-0"
        truth = emotions[i % len(emotions)]
        labels[i + 1] = truth
        votes += [("good1", stim, truth), ("good2", stim, truth)]
        votes += [(f"lazy{k}", stim, "neutral") for k in range(3)]
    insert_study(store, labels, votes)
    ds = dawid_skene_labels(store)
    assert (ds["majority"] == "neutral").all()
    assert (ds["dawid_skene"] == ds["label"]).mean() > 0.9
    assert ds["disagree"].sum() > 25


def test_numpy_engine_matches_crowd_kit():
    rng = np.random.default_rng(13)
    n_tasks, n_workers = 150, 12
    truth = rng.integers(0, 5, n_tasks)
    skill = rng.uniform(0.3, 0.95, n_workers)
    task = np.repeat(np.arange(n_tasks), 6)
    worker = np.concatenate([rng.choice(n_workers, 6, replace=False) for _ in range(n_tasks)])
    right = rng.random(len(task)) < skill[worker]
    label = np.where(right, truth[task], rng.integers(0, 5, len(task)))
    ours_tasks, ours = dawid_skene(task, worker, label)
    ref_tasks, ref, cols = _crowdkit(task, worker, label, 100, 1e-5)
    assert np.array_equal(ours_tasks, ref_tasks) and list(cols) == [0, 1, 2, 3, 4]
    assert np.allclose(ours, ref, atol=1e-8)


def test_engines_agree_on_a_study(store):
    random_study(store, n_sources=6, raters_per_playlist=6, seed=14)
    study = load_study(store)
    a = dawid_skene_labels(study)
    b = dawid_skene_labels(study, engine="crowdkit")
    assert (a["dawid_skene"] == b["dawid_skene"]).all()
    assert np.allclose(a["ds_confidence"], b["ds_confidence"], atol=1e-8)


def _random_crowd(rng, n_tasks: int, n_workers: int, votes_per_task: int, n_labels: int,
                  accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(task, worker, label) of each vote: each task rated by `votes_per_task` distinct workers, each
    right with its worker's `accuracy`, else a uniformly random label (which may be right too)."""
    truth = rng.integers(0, n_labels, n_tasks)
    task = np.repeat(np.arange(n_tasks), votes_per_task)
    worker = np.concatenate([rng.choice(n_workers, votes_per_task, replace=False) for _ in range(n_tasks)])
    right = rng.random(len(task)) < accuracy[worker]
    return task, worker, np.where(right, truth[task], rng.integers(0, n_labels, len(task)))


def test_numpy_engine_matches_crowd_kit_with_few_votes_per_worker():
    # Many workers with three or four votes each: most (worker, answer) pairs are never seen,
    # which the EM must leave out of every product and of its stopping rule.
    rng = np.random.default_rng(21)
    task, worker, label = _random_crowd(rng, n_tasks=120, n_workers=200, votes_per_task=6, n_labels=6,
                                        accuracy=rng.uniform(0.4, 0.9, 200))
    ours_tasks, ours = dawid_skene(task, worker, label)
    ref_tasks, ref, _ = _crowdkit(task, worker, label, 100, 1e-5)
    assert np.array_equal(ours_tasks, ref_tasks)
    assert np.allclose(ours, ref, atol=1e-8)


def test_numbering_of_tasks_and_workers_does_not_matter():
    # dawid_skene renumbers tasks and workers for speed (_near_order): any numbering gives the
    # same probabilities, returned in the order of the task ids.
    rng = np.random.default_rng(5)
    n_tasks, n_workers = 90, 15
    task, worker, label = _random_crowd(rng, n_tasks, n_workers, votes_per_task=5, n_labels=7,
                                        accuracy=np.full(n_workers, 0.7))
    tasks, proba = dawid_skene(task, worker, label)
    task_ids, worker_ids = rng.permutation(1000)[:n_tasks] + 5, rng.permutation(n_workers)
    order = rng.permutation(len(task))
    shuffled_tasks, shuffled = dawid_skene(task_ids[task][order], worker_ids[worker][order], label[order])
    assert np.array_equal(shuffled_tasks, np.sort(task_ids))
    assert np.allclose(shuffled[np.searchsorted(shuffled_tasks, task_ids)], proba, atol=1e-12)
