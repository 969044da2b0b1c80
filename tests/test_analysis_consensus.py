from analysis_fixtures import insert_study, random_study

from disfer.analysis import dawid_skene_labels, load_study, majority_vote


def test_agrees_with_a_clear_majority(store):
    random_study(store, n_sources=8, raters_per_playlist=9, seed=9)
    study = load_study(store)
    ds = dawid_skene_labels(study).set_index("stimulus_id")
    mv = majority_vote(study).set_index("stimulus_id")
    clear = mv[mv["majority_share"] >= 0.6].index
    assert len(clear) > 20
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
