from analysis_fixtures import insert_study

from disfer.analysis import label_audit


def test_hand_worked_audit(store):
    votes = []
    # source 1 (label anger): both versions voted fear -> all versions misclassified
    for stim in ("1-original-0", "1-gaussian_blur-1"):
        votes += [("a", stim, "fear"), ("b", stim, "fear"), ("c", stim, "anger")]
    # source 2 (label happiness): original right, blurred version wrong (surprise 2 of 3)
    votes += [(p, "2-original-0", "happiness") for p in "abc"]
    votes += [("a", "2-gaussian_blur-1", "surprise"), ("b", "2-gaussian_blur-1", "surprise"),
              ("c", "2-gaussian_blur-1", "happiness")]
    insert_study(store, {1: "anger", 2: "happiness"}, votes)
    audit = label_audit(store)
    assert len(audit.contradicted) == 3
    row = audit.contradicted.set_index("stimulus_id").loc["2-gaussian_blur-1"]
    assert (row["label"], row["majority"]) == ("happiness", "surprise")
    assert abs(row["majority_share"] - 2 / 3) < 1e-12 and abs(row["label_share"] - 1 / 3) < 1e-12
    assert audit.source_ids == [1]
    bad = audit.all_versions_misclassified.iloc[0]
    assert bad["versions"] == 2 and bad["majorities"] == ["fear"]


def test_sources_wrong_everywhere_come_strongest_first(store):
    votes = []
    # source 1 (anger): majority fear 2 of 3 on both versions -> margin 1/3
    for stim in ("1-original-0", "1-gaussian_blur-1"):
        votes += [("a", stim, "fear"), ("b", stim, "fear"), ("c", stim, "anger")]
    # source 2 (sadness): every vote says neutral on both versions -> margin 1
    for stim in ("2-original-0", "2-gaussian_blur-1"):
        votes += [(p, stim, "neutral") for p in "abc"]
    insert_study(store, {1: "anger", 2: "sadness"}, votes)
    sources = label_audit(store).all_versions_misclassified
    assert list(sources["source_id"]) == [2, 1]
    assert sources["strength"].tolist() == [1.0, 1 / 3]
    assert sources["label_share"].tolist() == [0.0, 1 / 3]
