"""Every dashboard page, run headless with streamlit's AppTest, on the stores a user may have: empty,
the demo study, a study without votes and one without models. A page must never raise; with data
it shows the study's key numbers, without it says what to load.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from disfer.emotions import EMOTIONS
from disfer.outfiles import markdown_text
from disfer.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["overview", "stimuli", "robustness", "confusion", "agreement", "audit", "saliency"]
CONDITIONS = [("original", 0)] + [(d, lvl) for d in ("gaussian_blur", "gaussian_noise", "salt_pepper")
                                  for lvl in (1, 2, 3)]
TIMEOUT = 60


def make_small_study(path: Path, *, per_emotion: int = 2, participants: int = 6, votes: bool = True,
                     models: tuple[str, ...] = ("cnn_a", "cnn_b"), kind: str = "real", seed: int = 0,
                     first_source: int = 1) -> Store:
    """A small study written straight into a store: random faces, 10 versions each, a crowd whose
    accuracy falls with the distortion level and models that are worse than the crowd.

    first_source: the study's first source id; sources 1 .. first_source - 1 are ingested (split
    Training) but not in the study, as in a real store."""
    rng = np.random.default_rng(seed)
    store = Store(path, lock_timeout=10)
    n_src = per_emotion * len(EMOTIONS)
    labels = [EMOTIONS[i // per_emotion] for i in range(n_src)]
    n_out = first_source - 1
    sources = pd.DataFrame({
        "source_id": np.arange(1, n_out + n_src + 1), "dataset": "fer2013",
        "original_index": np.arange(n_out + n_src),
        "original_label": [EMOTIONS[i % 7] for i in range(n_out)] + labels,
        "split": ["Training"] * n_out + ["PrivateTest"] * n_src,
        "pixels": [rng.integers(0, 256, 2304, dtype=np.uint8).tobytes() for _ in range(n_out + n_src)]})
    stim_rows = [(f"{s}-{d}-{lvl}", s, d, lvl, float(lvl), int(s * 100 + lvl),
                  rng.integers(0, 256, 2304, dtype=np.uint8).tobytes())
                 for s in sources["source_id"][n_out:] for d, lvl in CONDITIONS]
    stimuli = pd.DataFrame(stim_rows, columns=["stimulus_id", "source_id", "distortion", "level", "param",
                                               "seed", "pixels"])
    label_of = dict(zip(sources["source_id"], sources["original_label"], strict=True))

    def answer(source_id: int, level: int, skill: float) -> str:
        if rng.random() < skill - 0.12 * level:
            # The first source is mislabelled: the crowd sees surprise where the dataset says anger.
            return "surprise" if source_id == first_source else label_of[source_id]
        return EMOTIONS[rng.integers(0, 7)]

    people = pd.DataFrame({"participant_id": [f"p{i:02d}" for i in range(participants)], "crowd": "study"})
    vote_rows = [(p, sid, answer(src, lvl, 0.85)) for p in people["participant_id"]
                 for sid, src, _, lvl, *_ in stim_rows] if votes else []
    vote_df = pd.DataFrame(vote_rows, columns=["participant_id", "stimulus_id", "emotion"])
    pred_rows = []
    for m, model in enumerate(models):
        for sid, src, _, lvl, *_ in stim_rows:
            guess = answer(src, lvl, 0.7 - 0.1 * m)
            proba = np.full(7, 0.05)
            proba[EMOTIONS.index(guess)] = 0.7
            pred_rows.append((model, sid, *proba.tolist(), guess))
    pred_df = pd.DataFrame(pred_rows, columns=["model_id", "stimulus_id", *EMOTIONS, "predicted"])
    with store.write() as con:
        con.register("src_df", sources)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels)"
                    " SELECT * FROM src_df")
        con.register("stim_df", stimuli)
        con.execute("INSERT INTO stimuli SELECT * FROM stim_df")
        con.execute("INSERT INTO playlists SELECT (row_number() OVER (ORDER BY stimulus_id)) % 3, "
                    "stimulus_id, row_number() OVER (ORDER BY stimulus_id) FROM stimuli")
        if votes:
            con.register("people_df", people)
            con.execute("INSERT INTO participants (participant_id, crowd) SELECT * FROM people_df")
            con.register("vote_df", vote_df)
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion) SELECT * FROM vote_df")
        for model in models:
            con.execute("INSERT INTO models (model_id, family) VALUES (?, 'external')", [model])
        if models:
            con.register("pred_df", pred_df)
            con.execute("INSERT INTO predictions (model_id, stimulus_id, anger, disgust, fear, happiness, "
                        "neutral, sadness, surprise, predicted) SELECT * FROM pred_df")
        con.execute("INSERT INTO study_meta VALUES ('study_kind', ?)", [kind])
    return store


sys.path.insert(0, str(ROOT))  # pages import app_common from the repository root, as `streamlit run` does


def run_page(page: str, db: Path, timings: dict | None = None, **state) -> AppTest:
    """Run one page against the store at `db` (twice: the second run is the cached one we time)."""
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    os.environ["DISFER_DB"] = str(db)
    at.run()
    if timings is not None and not at.exception:
        start = time.perf_counter()
        at.run()
        timings[page] = time.perf_counter() - start
    return at


def texts(at: AppTest) -> str:
    """Everything a user reads on the page, as one string."""
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "subheader")
             for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


# Elements whose text Streamlit shows as it is (tables, JSON, code, plain text, charts, pictures'
# bytes): stored text may reach them raw. Every other string of an element (a body, a label, a help
# text, a caption) is rendered as Markdown.
PLAIN_ELEMENTS = {"arrow_data_frame", "arrow_table", "dataframe", "table", "json", "code", "text",
                  "vega_lite_chart", "arrow_vega_lite_chart", "selectbox", "multiselect"}


# Proto fields that hold no text for the reader (element ids, which carry a widget's key).
NOT_SHOWN = {"id", "form_id"}


def _strings(message) -> list[str]:
    found = []
    for field, value in message.ListFields():
        if field.name in NOT_SHOWN:
            continue
        values = value if field.is_repeated else [value]
        for v in values:
            if isinstance(v, str):
                found.append(v)
            elif hasattr(v, "ListFields"):
                found += _strings(v)
    return found


def markdown_texts(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit renders as Markdown, in the main area and sidebar."""
    found = []
    for node in [*at.main, *at.sidebar]:
        proto = getattr(node, "proto", None)
        if proto is None or getattr(node, "type", None) in PLAIN_ELEMENTS:
            continue
        if proto.DESCRIPTOR.name == "Element":
            kind = proto.WhichOneof("type")
            if kind in PLAIN_ELEMENTS:
                continue
            proto = getattr(proto, kind)
        found += _strings(proto)
    return found


def assert_no_markup_from_the_store(at: AppTest) -> None:
    """No image (which the browser would fetch) and no HTML reached Markdown unescaped."""
    bad = [t for t in markdown_texts(at) if "![" in t or "<img" in t or "](http" in t]
    assert not bad, bad


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def assert_clean(at: AppTest, page: str) -> None:
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    assert not at.error, f"{page}: {[e.value for e in at.error]}"


@pytest.fixture(scope="module")
def full_study(tmp_path_factory) -> Store:
    return make_small_study(tmp_path_factory.mktemp("full") / "study.duckdb")


@pytest.fixture(scope="module")
def no_votes(tmp_path_factory) -> Store:
    return make_small_study(tmp_path_factory.mktemp("novotes") / "study.duckdb", votes=False)


@pytest.fixture(scope="module")
def no_models(tmp_path_factory) -> Store:
    return make_small_study(tmp_path_factory.mktemp("nomodels") / "study.duckdb", models=())


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_says_what_to_load(page, store):
    at = run_page(page, store.path)
    assert_clean(at, page)
    shown = texts(at)
    assert "no study yet" in shown and "disfer demo" in shown and "disfer ingest" in shown


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_a_study(page, full_study):
    timings: dict = {}
    at = run_page(page, full_study.path, timings)
    assert_clean(at, page)
    assert "demo data" not in texts(at)  # a real study carries no demo banner
    print(f"{page}: {timings[page]:.3f} s after the first load (small study)")


@pytest.mark.parametrize("page", PAGES)
def test_page_without_votes(page, no_votes):
    at = run_page(page, no_votes.path)
    assert_clean(at, page)
    if page in ("agreement", "audit"):
        assert "No crowd votes" in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_page_without_models(page, no_models):
    at = run_page(page, no_models.path)
    assert_clean(at, page)


def test_overview_counts_the_study(full_study, no_models):
    from disfer.analysis import overview, study_report

    at = run_page("overview", full_study.path)
    expected = overview(full_study)
    assert metric(at, "Study faces") == f"{expected['study_sources']:,}" == "14"
    assert metric(at, "Stimuli") == "140"
    assert metric(at, "Votes") == "840"
    registered = len(expected["models"])
    assert metric(at, "Models run") == f"2 of {registered}"  # run on the study, of those registered
    headline = at.dataframe[0].value
    report = study_report(full_study, bootstrap=0, consensus=False)
    assert list(headline["rater"]) == ["humans (majority vote)", "cnn_a", "cnn_b"]
    # one format per column: percent with one decimal, kappas with three, n/a where it does not apply
    assert headline["accuracy"].iloc[0] == f"{100 * report['humans']['accuracy']:.1f}%"
    assert headline["Cohen's kappa"].iloc[1] == f"{report['models']['cnn_a']['cohen_kappa']:.3f}"
    assert headline["Fleiss' kappa"].iloc[1] == "n/a"
    assert "None" not in headline.to_string()
    assert "stimuli whose majority contradicts the label" in texts(at)
    # McNemar: each model against the human majority, with the 2x2 counts
    tests = at.dataframe[1].value
    assert list(tests["comparison"]) == ["cnn_a vs humans (majority)", "cnn_b vs humans (majority)"]
    mc = report["models"]["cnn_a"]["mcnemar_vs_humans"]
    assert tests.iloc[0][["both_right", "only_a_right", "only_b_right", "both_wrong"]].tolist() == [
        *mc["table"][0], *mc["table"][1]]
    assert tests["p_value"].iloc[0] == pytest.approx(report["models"]["cnn_a"]["mcnemar_vs_humans_p"])
    assert metric(run_page("overview", no_models.path), "Models run") == f"0 of {registered - 2}"


def test_overview_without_votes_says_the_audit_is_not_measured(no_votes):
    at = run_page("overview", no_votes.path)
    assert_clean(at, "overview")
    shown = texts(at)
    assert "not measured yet" in shown
    assert "0 stimuli whose majority contradicts" not in shown


def test_overview_counts_only_the_studys_faces_per_emotion(full_study, tmp_path):
    import shutil

    from disfer.analysis import overview

    db = tmp_path / "more.duckdb"
    shutil.copy(full_study.path, db)
    store = Store(db)
    with store.write() as con:  # faces ingested but never built into the study
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label)"
                    " SELECT 1000 + i, 'extra', i, 'fear' FROM range(50) t(i)")
    facts = overview(store, availability=False)
    assert facts["sources"] == 64 and facts["study_sources"] == 14
    at = run_page("overview", db)
    assert metric(at, "Study faces") == "14"
    assert "The 14 source faces of the study by their dataset label (64 faces ingested in all)." in texts(at)
    from disfer.analysis.overview import emotion_counts

    assert emotion_counts(facts)["n"].sum() == 14 and emotion_counts(facts, study=False)["n"].sum() == 64


def test_agreement_shows_fleiss_kappa_of_the_store(full_study):
    from disfer.analysis import fleiss_kappa

    at = run_page("agreement", full_study.path)
    assert metric(at, "Fleiss' kappa") == f"{fleiss_kappa(full_study):.3f}"


def test_audit_lists_the_mislabelled_source_first(full_study):
    from disfer.analysis import label_audit

    audit = label_audit(full_study)
    assert 1 in audit.source_ids  # the crowd calls source 1 surprise on every version
    at = run_page("audit", full_study.path)
    assert metric(at, "Sources with all versions misclassified") == f"{len(audit.source_ids):,}"
    assert "#1: labelled **anger**" in texts(at)


def test_robustness_table_is_the_analysis_curve(full_study):
    from disfer.analysis import robustness_curve

    at = run_page("robustness", full_study.path)
    shown = at.dataframe[0].value
    curve = robustness_curve(full_study)
    assert len(shown) == len(curve)
    assert shown["accuracy"].tolist() == pytest.approx(curve["accuracy"].tolist())
    assert at.radio[0].disabled  # no curation yet: only the original labels
    at.multiselect[0].set_value(["humans"]).run()
    assert set(at.dataframe[0].value["rater"]) == {"humans"}


def test_confusion_condition_changes_the_matrices(full_study):
    from disfer.analysis import confusion_matrix

    at = run_page("confusion", full_study.path)
    at.selectbox[0].set_value("gaussian_blur 3").run()
    assert_clean(at, "confusion")
    expected = confusion_matrix(full_study, "cnn_a", "gaussian_blur", 3)
    # the off-diagonal table holds the model's cells of this condition
    points = at.dataframe[1].value
    row = points[(points["label"] == "fear") & (points["predicted"] == "anger")]
    assert row["cnn_a"].item() == pytest.approx(expected.loc["fear", "anger"])


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def test_confusion_grid_shows_each_level_of_a_distortion_on_one_scale(full_study):
    from disfer.analysis import confusion_matrix

    at = run_page("confusion", full_study.path)
    at.button_group[0].set_value("gaussian_blur").run()
    assert_clean(at, "confusion")
    grid = at.dataframe[0].value
    assert list(dict.fromkeys(grid["condition"])) == ["original", "gaussian_blur 1", "gaussian_blur 2",
                                                      "gaussian_blur 3"]
    expected = confusion_matrix(full_study, "cnn_a", "gaussian_blur", 2)
    cell = grid[(grid["rater"] == "cnn_a") & (grid["condition"] == "gaussian_blur 2")
                & (grid["label"] == "fear") & (grid["predicted"] == "anger")]["value"].item()
    assert cell == pytest.approx(expected.loc["fear", "anger"])
    spec = _specs(at)[0]
    assert spec["facet"]["column"]["sort"] == ["original", "gaussian_blur 1", "gaussian_blur 2", "gaussian_blur 3"]
    assert spec["spec"]["layer"][0]["encoding"]["color"]["scale"]["domain"] == [0, 1]


def test_every_chart_on_the_figure_pages_sizes_itself(full_study):
    """Streamlit squeezes a spec without `autosize` into its width and height, labels included."""
    for page in ("robustness", "confusion", "agreement", "overview"):
        at = run_page(page, full_study.path)
        assert_clean(at, page)
        specs = _specs(at)
        assert specs, page
        for spec in specs:
            assert spec["autosize"] == {"type": "pad", "contains": "padding"}, page
            assert spec.get("description"), page


def test_stimuli_filters_and_opens_a_source(full_study):
    at = run_page("stimuli", full_study.path)
    assert "**140** of 140 stimuli match." in texts(at)
    # The two words under each face are explained on the page, not only in a tooltip.
    assert any("dataset label / the crowd's majority" in c.value for c in at.caption)
    at.sidebar.multiselect[0].set_value(["fear"]).run()
    at.sidebar.multiselect[1].set_value(["salt_pepper"]).run()
    assert "**6** of 140 stimuli match." in texts(at)  # 2 fear sources x 3 levels
    first = next(b for b in at.button if b.key and b.key.startswith("open-"))
    first.click().run()
    versions = at.dataframe[-1].value
    assert len(versions) == 10 and set(versions["label"]) == {"fear"}
    assert {"cnn_a", "cnn_b", "votes"} <= set(versions.columns)


def test_audit_sends_a_source_to_curation(full_study):
    os.environ["DISFER_DB"] = str(full_study.path)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.switch_page("app_pages/audit.py").run()
    assert_clean(at, "audit")
    assert at.title[0].value == "Label audit"
    at.button(key="curate-1").click().run()
    assert_clean(at, "curation")
    assert at.session_state["curation_source_id"] == 1
    assert at.title[0].value == "Curation"
    assert at.subheader[0].value == "Source 1: labelled anger"
    # Source 1 also heads the curation queue: send one from the middle of it, to see it is the chosen
    # source that opens, not the queue's first.
    at.switch_page("app_pages/audit.py").run()
    assert at.title[0].value == "Label audit"
    next(s for s in at.selectbox if s.label == "Open a source in curation").set_value(8).run()
    next(b for b in at.button if b.label == "Curate this source").click().run()
    assert_clean(at, "curation")
    assert at.title[0].value == "Curation"
    assert at.subheader[0].value == "Source 8: labelled happiness"
    assert at.number_input(key="jump_to").value == 8


def test_saliency_lists_models_without_weights_as_unavailable(tmp_path):
    from unittest.mock import patch

    from disfer.models.registry import ModelInfo

    missing = ModelInfo(name="rmn", family="rmn", description="", weights_present=False, weights_path=None,
                        weights_file="rmn.pt", looked_in=("rmn.pt",), hint="put rmn.pt in models/")
    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1)  # its own store: nothing cached
    with patch("disfer.models.registry.list_models", return_value=[missing]):
        at = run_page("saliency", study.path)
    assert_clean(at, "saliency")
    assert "No model has its weights here" in texts(at)
    models = at.dataframe[0].value
    assert models.loc[models["model"] == "rmn", "available"].item() == "unavailable"


@pytest.mark.parametrize("page", PAGES)
def test_page_on_the_demo_study(page, demo_store):
    timings: dict = {}
    at = run_page(page, Path(demo_store), timings)
    assert_clean(at, page)
    assert "demo data: synthetic faces and a simulated crowd" in texts(at)
    print(f"{page}: {timings[page]:.3f} s after the first load (demo study)")


def test_overview_of_the_demo_study(demo_store):
    at = run_page("overview", Path(demo_store))
    assert metric(at, "Study faces") == "84"
    assert metric(at, "Stimuli") == "840"
    assert metric(at, "Playlists") == "21"
    assert "the offline demo study" in texts(at)


def test_change_counter_sees_every_commit_at_once(store):
    import app_common

    first = app_common.change_counter(store)
    assert app_common.change_counter(store) == first
    for expected in (first + 1, first + 2):
        with store.write() as con:
            con.execute("INSERT OR REPLACE INTO study_meta VALUES ('note', ?)", [str(expected)])
        assert app_common.change_counter(store) == expected == store.change_counter()


PAGE_WITH_A_HELPER = """
import streamlit as st
from app_common import cached

def helper(store):
    return "{answer}"

try:
    st.markdown(f"helper says {{cached(helper)}}")
except TypeError as err:
    st.markdown(f"refused: {{err}}")
"""


def test_two_pages_helpers_of_one_name_do_not_share_results(store):
    # Under `streamlit run` (and AppTest) every page runs as __main__: both helpers are `__main__.helper`.
    os.environ["DISFER_DB"] = str(store.path)
    shown = []
    for answer in ("page one", "page two"):
        at = AppTest.from_string(PAGE_WITH_A_HELPER.format(answer=answer), default_timeout=TIMEOUT).run()
        assert not at.exception
        shown.append(at.markdown[0].value)
    assert all(text.startswith("refused: __main__.helper is not a function of the disfer package")
               for text in shown), shown


def test_cache_key_names_exactly_one_function(store):
    import app_common
    from disfer.analysis.overview import curated_source_count

    os.environ["DISFER_DB"] = str(store.path)
    assert app_common.function_key(curated_source_count) == "disfer.analysis.overview.curated_source_count"

    def impostor(store):
        return 99

    impostor.__module__, impostor.__qualname__ = curated_source_count.__module__, curated_source_count.__qualname__
    assert app_common.cached(curated_source_count) == 0
    with pytest.raises(TypeError, match="does not name"):
        app_common.cached(impostor)  # same __module__ and __qualname__: it must not get the real one's 0
    with pytest.raises(TypeError, match="does not name"):
        app_common.analysed(impostor)
    assert app_common.cached(curated_source_count) == 0

    def nested(store):
        return 1

    nested.__module__ = "disfer.analysis.overview"  # a name in disfer that leads nowhere
    for fn in (nested, lambda store: 2):
        with pytest.raises(TypeError):
            app_common.function_key(fn)


def test_robustness_switches_to_curated_labels_once_curation_exists(tmp_path):
    from disfer.analysis import load_study, robustness_curve
    from disfer.ledger import record_decision

    study = make_small_study(tmp_path / "study.duckdb", per_emotion=1)
    record_decision(study, 1, ["surprise"], None, "relabeled", "ana")  # the crowd was right
    at = run_page("robustness", study.path)
    assert not at.radio[0].disabled
    at.radio[0].set_value("curated labels").run()
    assert_clean(at, "robustness")
    shown = at.dataframe[0].value
    curated = robustness_curve(load_study(study, label_kind="curated"))
    original = robustness_curve(load_study(study))
    assert shown["accuracy"].tolist() == pytest.approx(curated["accuracy"].tolist())
    assert curated["accuracy"].tolist() != pytest.approx(original["accuracy"].tolist())


# Issue 13's beacon, without the ':' and '.' that chart field names cannot hold (a model name is one).
BEACON = "![b](//beacon/b)"


def test_stored_text_is_shown_as_text_on_every_page(tmp_path):
    """A label and a model named like a Markdown image, a split holding HTML: issue 13's beacon
    never reaches a page's Markdown unescaped (tables may show it raw: they are text)."""
    store = make_small_study(tmp_path / "study.duckdb", models=("cnn_a", BEACON))
    with store.write() as con:
        con.execute("UPDATE sources SET split = ?", ["<img src=x onerror=alert(1)>"])
        con.execute("UPDATE sources SET original_label = ? WHERE source_id = 1", [BEACON])
    for page in PAGES:
        at = run_page(page, store.path, stimuli_source_id=1)
        assert_clean(at, page)
        assert_no_markup_from_the_store(at)
        if page == "stimuli":  # the label is on the page, as its text
            assert f"Source 1: labelled {markdown_text(BEACON)}" in markdown_texts(at)
