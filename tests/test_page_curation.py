"""The curation and export pages, run headless with streamlit's AppTest on an empty store and on a
store with a small study: a curator's clicks land as events, an export writes its folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_curation import add_sources
from test_pages import assert_no_markup_from_the_store, markdown_texts

from disfer import ledger
from disfer.outfiles import markdown_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import app_common from the repository root, as `streamlit run` does


def run_page(page: str, db: Path, monkeypatch, **state) -> AppTest:
    monkeypatch.setenv("DISFER_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "subheader", "success")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def study(store):
    # Source 2 is contradicted on every version, so the audit puts it first in the queue.
    add_sources(store, ["happiness", "anger", "sadness"],
                votes={0: ["happiness"] * 10, 1: ["surprise"] * 10, 2: ["sadness"] * 6 + ["fear"] * 4})
    return store


@pytest.mark.parametrize("page", ["curation", "export"])
def test_empty_store_says_what_to_load(page, store, monkeypatch):
    at = run_page(page, store.path, monkeypatch)
    clean(at)
    assert "no study yet" in texts(at) and "disfer demo" in texts(at)


def test_curator_confirms_then_relabels_and_undoes(study, monkeypatch):
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    clean(at)
    assert at.subheader[0].value == "Source 2: labelled anger"  # the audit's first
    assert len(at.image) >= 11  # the face, large, and its ten versions
    assert markdown_text("majority surprise in 10 of 10 versions; label anger") in texts(at)
    button(at, "Confirm original label").click().run()
    clean(at)
    log = ledger.event_log(study)
    assert list(zip(log["source_id"], log["status"], log["curator"], strict=True)) == [(2, "confirmed", "ann")]
    assert at.subheader[0].value.startswith("Source 3")  # moved on to the next in the queue
    assert at.number_input(key="jump_to").value == 3
    # Multi-label with the crowd's soft label (the V key), saved by the button Ctrl+Enter presses.
    button(at, "Crowd as soft label").click().run()
    assert at.session_state["cur_labels"] == ["sadness", "fear"]
    assert at.text_input(key="cur_weights").value == "0.6,0.4"
    assert at.selectbox(key="cur_status").value == "ambiguous"
    button(at, "Save decision").click().run()
    clean(at)
    row = ledger.current_ground_truth(study).set_index("source_id").loc[3]
    assert row["labels"] == ["sadness", "fear"] and row["weights"] == pytest.approx([0.6, 0.4])
    button(at, "Undo my last").click().run()
    clean(at)
    assert 3 not in set(ledger.current_ground_truth(study)["source_id"])


def test_undo_says_what_it_undid_and_returns_to_that_face(study, monkeypatch):
    at = run_page("curation", study.path, monkeypatch, curator="ann", curation_source_id=3)
    at.button(key="toggle-fear").click().run()  # the 3 key: sadness, fear
    at.text_input(key="cur_weights").set_value("0.7,0.3").run()
    button(at, "Save decision").click().run()
    assert not at.subheader[0].value.startswith("Source 3")  # moved on
    button(at, "Undo my last").click().run()
    clean(at)
    assert at.subheader[0].value == "Source 3: labelled sadness"  # back to the face it undid
    said = at.success[0].value
    assert markdown_text("source 3: ambiguous sadness 0.7, fear 0.3") in said
    assert said.startswith("Undid your decision")
    assert at.session_state["cur_labels"] == ["sadness"]  # the form starts again from the original
    assert 3 not in set(ledger.current_ground_truth(study)["source_id"])


def test_bad_weights_are_refused_as_typed(study, monkeypatch):
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    at.number_input(key="jump_to").set_value(1).run()
    assert at.subheader[0].value == "Source 1: labelled happiness"
    at.button(key="toggle-neutral").click().run()
    assert at.session_state["cur_labels"] == ["happiness", "neutral"]
    at.text_input(key="cur_weights").set_value("0.5,0.2").run()
    # Said at once, before any Save; Save is off until the weights are right.
    assert at.error and "sum to" in at.error[0].value
    assert button(at, "Save decision").disabled
    at.text_input(key="cur_weights").set_value("0.5,0.5").run()
    assert not at.error and not button(at, "Save decision").disabled
    assert ledger.event_log(study).empty


def test_progress_counts_mine_everyones_and_today(study, monkeypatch):
    ledger.record_decision(study, 1, ["happiness"], None, "confirmed", "bob")
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    nav = next(m.value for m in at.markdown if m.value.startswith("**#"))
    assert nav.startswith("**#1 of 3**") and "everyone: 1 decided, 2 remaining" in nav
    assert "mine 0 decided, 3 to go" in nav and "0 decisions today" in nav
    button(at, "Confirm original label").click().run()
    button(at, "Exclude").click().run()
    nav = next(m.value for m in at.markdown if m.value.startswith("**#"))
    assert "everyone: 3 decided, 0 remaining" in nav and "mine 2 decided, 1 to go" in nav
    assert "2 decisions today" in nav


def test_the_curator_stays_across_pages(study, monkeypatch):
    """Issue 16: typed on Curation, gone after Label audit's "Curate"; now it stays."""
    monkeypatch.setenv("DISFER_DB", str(study.path))
    monkeypatch.delenv("DISFER_CURATOR", raising=False)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run().switch_page("app_pages/curation.py").run()
    assert button(at, "Save decision").disabled  # nobody yet
    at.text_input(key="curator_field").set_value("ann").run()
    assert not button(at, "Save decision").disabled
    at.switch_page("app_pages/audit.py").run()
    clean(at)
    at.session_state["curation_source_id"] = 1  # the audit's "Curate" button
    at.switch_page("app_pages/curation.py").run()
    clean(at)
    assert at.text_input(key="curator_field").value == "ann"
    assert at.subheader[0].value == "Source 1: labelled happiness"
    button(at, "Confirm original label").click().run()
    assert ledger.event_log(study)["curator"].tolist() == ["ann"]
    # The address carries both, for a reload or a bookmark.
    assert at.query_params["curator"] == "ann" and at.query_params["source"] == "2"  # wrapped to the first I have not decided


def test_a_reload_keeps_curator_and_position_from_the_address(study, monkeypatch):
    monkeypatch.setenv("DISFER_DB", str(study.path))
    monkeypatch.delenv("DISFER_CURATOR", raising=False)
    at = AppTest.from_file(str(ROOT / "app_pages" / "curation.py"), default_timeout=60)
    at.query_params["curator"] = "ann"
    at.query_params["source"] = "3"
    at.run()
    clean(at)
    assert at.text_input(key="curator_field").value == "ann"
    assert at.subheader[0].value == "Source 3: labelled sadness"
    assert "#2 of 3" in next(m.value for m in at.markdown if m.value.startswith("**#"))


def test_a_fresh_session_starts_at_the_first_face_i_have_not_decided(study, monkeypatch):
    ledger.record_decision(study, 2, ["anger"], None, "confirmed", "ann")
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    assert at.subheader[0].value.startswith("Source 3")
    # bob: not 2 (it has its one curator, the default target, so it went to the end of the queue)
    # nor 3 (ann has it open): the audit's next, 1.
    at = run_page("curation", study.path, monkeypatch, curator="bob")
    assert at.subheader[0].value.startswith("Source 1")
    # With two curators per face as the target, 2 is still below it and first again.
    ledger.set_target_curators(study, 2, "lea")
    at = run_page("curation", study.path, monkeypatch, curator="cat")
    assert at.subheader[0].value.startswith("Source 2")


def test_before_any_vote_faces_are_drawn_in_dataset_order_by_label(store, monkeypatch):
    add_sources(store, ["sadness", "anger", "happiness"])
    at = run_page("curation", store.path, monkeypatch, curator="ann")
    clean(at)
    assert at.subheader[0].value == "Source 2: labelled anger"  # anger, happiness, sadness
    assert len(at.image) >= 11
    said = texts(at)
    assert markdown_text("no crowd votes on this face yet") in said
    assert markdown_text("dataset order by label") in said and "review order" not in said
    assert not at.get("vega_lite_chart") and not at.get("arrow_vega_lite_chart")  # no empty chart
    assert button(at, "Crowd as soft label").disabled


def test_blind_mode_hides_others_decisions_until_i_decide(study, monkeypatch):
    ledger.record_decision(study, 2, ["surprise"], None, "relabeled", "bob", note="bob's view")
    ledger.set_blind_mode(study, True, "lea")
    at = run_page("curation", study.path, monkeypatch, curator="ann", curation_source_id=2)
    clean(at)
    said = texts(at)
    assert "hidden until you decide" in said and "bob" not in said
    assert at.session_state["cur_labels"] == ["anger"]  # from the original label, not bob's
    assert not any("bob" in str(d.value.to_dict()) for d in at.dataframe)  # no history table
    button(at, "Confirm original label").click().run()  # ann decides; now she sees bob's opinion
    at.number_input(key="jump_to").set_value(2).run()
    clean(at)
    assert "disputed" in texts(at) and "hidden until you decide" not in texts(at)
    # Off again (the sidebar toggle a lead sees): nothing hidden from anyone.
    at.toggle(key="blind_setting").set_value(False).run()
    assert not ledger.blind_mode(study)
    at = run_page("curation", study.path, monkeypatch, curator="cat", curation_source_id=2)
    assert "hidden until you decide" not in texts(at) and "disputed" in texts(at)


def test_blind_mode_from_the_command_line(study, capsys):
    from disfer.cli import main

    db = ["--db", str(study.path)]
    assert main(db + ["curate", "blind"]) == 0 and capsys.readouterr().out == "blind mode off\n"
    assert main(db + ["curate", "blind", "on", "--lead", "lea"]) == 0
    assert capsys.readouterr().out == "blind mode on\n" and ledger.blind_mode(study)


def test_disagreement_shows_kappa_and_a_lead_resolves(study, monkeypatch):
    ledger.record_decision(study, 1, ["happiness"], None, "confirmed", "ann")
    ledger.record_decision(study, 1, ["surprise"], None, "relabeled", "bob")
    at = run_page("curation", study.path, monkeypatch, curator="lea", curation_source_id=1)
    clean(at)
    assert "disputed" in texts(at)
    tables = [d.value for d in at.dataframe]
    pairs = next(t for t in tables if "Cohen's kappa" in t.columns)
    assert pairs.iloc[0]["n_common"] == 1
    assert at.session_state["cur_labels"] == ["surprise"]  # the provisional, latest opinion
    at.button(key="toggle-happiness").click().run()
    assert at.session_state["cur_labels"] == ["surprise", "happiness"]
    at.button(key="toggle-happiness").click().run()
    button(at, "Fix & accept").click().run()
    clean(at)
    row = ledger.current_ground_truth(study).set_index("source_id").loc[1]
    assert row["resolved"] and row["labels"] == ["surprise"] and row["status"] == "relabeled"
    last = ledger.event_log(study).iloc[-1]
    assert (last["curator"], last["role"], last["review"]) == ("lea", "lead", "fix")


def test_saliency_is_optional(study, monkeypatch):
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    at.toggle(key="show_saliency").set_value(True).run()
    clean(at)
    models = [s for s in at.selectbox if s.key == "saliency_model"]
    # Either a model with weights is offered, or the page says why there is none.
    assert models or any("aliency is not available" in c.value or "No model with weights" in c.value
                         for c in at.caption)


def export_page(db: Path, root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("DISFER_EXPORT_ROOT", str(root))
    return run_page("export", db, monkeypatch)


def press_export(at: AppTest, name: str, fmt: str = "fer2013-csv", replace: bool = False) -> AppTest:
    at.selectbox(key="export_format").set_value(fmt)
    at.text_input(key="export_name").set_value(name)
    at.checkbox(key="export_force").set_value(replace)
    return button(at, "Export").click().run()


def test_export_page_writes_the_dataset(study, monkeypatch, tmp_path):
    ledger.record_decision(study, 2, ["surprise"], None, "relabeled", "ann")
    at = export_page(study.path, tmp_path / "exports", monkeypatch)
    clean(at)
    press_export(at, "out")
    clean(at)
    manifest = json.loads((tmp_path / "exports" / "out" / "manifest.json").read_text())
    assert manifest["rows"] == 3 and manifest["labels_changed"] == 1
    assert "labels changed from the original: 1" in texts(at)


def test_the_export_root_defaults_to_exports_beside_the_store(study, monkeypatch):
    monkeypatch.delenv("DISFER_EXPORT_ROOT", raising=False)
    at = run_page("export", study.path, monkeypatch)
    assert at.text_input(key="export_name").value == "fer2013-csv"  # follows the format
    press_export(at, "fer2013-csv")
    clean(at)
    assert (study.path.parent / "exports" / "fer2013-csv" / "manifest.json").is_file()


@pytest.mark.parametrize("typed", ["/tmp/disfer-page-escape", "../x", "..", "a/b", "~/x", ".hidden", ""])
def test_the_folder_field_cannot_leave_the_export_root(study, monkeypatch, tmp_path, typed):
    root = tmp_path / "sandbox" / "exports"
    at = export_page(study.path, root, monkeypatch)
    before = set(tmp_path.rglob("*"))
    press_export(at, typed)
    assert not at.exception
    assert at.error and "cannot be used as a file or folder name" in at.error[0].value
    assert set(tmp_path.rglob("*")) == before and not Path("/tmp/disfer-page-escape").exists()


def test_replace_replaces_only_a_previous_export(study, monkeypatch, tmp_path):
    root = tmp_path / "exports"
    at = export_page(study.path, root, monkeypatch)
    press_export(at, "mine")
    clean(at)
    press_export(at, "mine")  # without Replace: refused
    assert at.error and "not empty" in at.error[0].value
    press_export(at, "mine", replace=True)  # a previous export of ours: replaced
    clean(at)
    (root / "mine" / "thesis.docx").write_text("three years of work")
    press_export(at, "mine", replace=True)  # now it holds a user's file: refused, nothing deleted
    assert at.error and "not exactly a previous export" in at.error[0].value
    assert (root / "mine" / "thesis.docx").read_text() == "three years of work"
    assert (root / "mine" / "manifest.json").is_file()


BEACON = "![b](http://127.0.0.1:8599/beacon.png)"
HTML_NOTE = "<img src=x onerror=alert(1)>"


def test_a_curators_name_and_note_are_shown_as_text(study, monkeypatch, tmp_path):
    """Issue 13: a curator named like a Markdown image made the Curation page and the Export page's
    dataset card fetch the URL. Now no Markdown of either page holds it unescaped."""
    ledger.record_decision(study, 2, ["surprise"], None, "relabeled", BEACON, note=HTML_NOTE)
    ledger.record_decision(study, 3, ["fear"], None, "relabeled", BEACON, note=HTML_NOTE)
    ledger.record_decision(study, 3, ["sadness"], None, "confirmed", "bob")  # a disagreement too
    for source in (2, 3):
        at = run_page("curation", study.path, monkeypatch, curator="lea", curation_source_id=source)
        clean(at)
        assert_no_markup_from_the_store(at)
        if source == 2:  # "ground truth: relabeled surprise by <the name>", as its text
            assert any(f"by {markdown_text(BEACON)}" in t for t in markdown_texts(at))
    at = export_page(study.path, tmp_path / "exports", monkeypatch)
    press_export(at, "out")
    clean(at)
    assert_no_markup_from_the_store(at)
    card = next(t for t in markdown_texts(at) if t.startswith("# DisFER Studio curated dataset"))
    assert markdown_text(BEACON) in card


def test_leaving_and_coming_back_keeps_the_page_working(study, monkeypatch):
    # Another page drops the curation page's widget state; coming back must rebuild the form.
    monkeypatch.setenv("DISFER_DB", str(study.path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state["curator"] = "ann"
    at.run().switch_page("app_pages/curation.py").run()
    clean(at)
    at.switch_page("app_pages/export.py").run()
    clean(at)
    at.session_state["curation_source_id"] = 3  # as the audit page's "Curate" button does
    at.switch_page("app_pages/curation.py").run()
    clean(at)
    assert at.subheader[0].value == "Source 3: labelled sadness"
    assert at.session_state["cur_labels"] == ["sadness"]


# -- soft locks and a lead's review (issue 16) -------------------------------------------------------
def coming_up(at: AppTest) -> dict:
    table = next(d.value for d in at.dataframe if "being_reviewed_by" in d.value.columns)
    return dict(zip(table["source_id"], table["being_reviewed_by"], strict=True))


def test_a_face_another_curator_has_open_is_marked_and_skipped(study, monkeypatch):
    ledger.mark_open(study, 3, "bob")  # the queue: 2 (the audit's first), 3, 1
    at = run_page("curation", study.path, monkeypatch, curator="ann")
    clean(at)
    assert at.subheader[0].value.startswith("Source 2")
    assert coming_up(at) == {2: "", 3: "bob", 1: ""}
    assert {c: m.source_id for c, m in ledger.open_marks(study).items()} == {"bob": 3, "ann": 2}
    button(at, "Skip").click().run()
    assert at.subheader[0].value.startswith("Source 1")  # passed by bob's
    button(at, "Previous").click().run()
    assert at.subheader[0].value.startswith("Source 2")
    button(at, "Confirm original label").click().run()
    assert at.subheader[0].value.startswith("Source 1")  # the next I have not decided, not bob's
    assert ledger.open_marks(study)["ann"].source_id == 1  # my mark moved with me
    # Locally I am the store's admin, so I may open it on purpose; the page says who has it.
    at.number_input(key="jump_to").set_value(3).run()
    clean(at)
    assert at.subheader[0].value.startswith("Source 3")
    assert "Being reviewed by bob" in at.warning[-1].value


def test_hosted_a_curator_is_refused_a_held_face_a_lead_opens_it(study, monkeypatch):
    from test_hosted_app import app, person

    ledger.mark_open(study, 3, "bob@lab.org")
    at = app(study.path, monkeypatch, person("curator")).run()
    at.switch_page("app_pages/curation.py").run()
    clean(at)
    assert at.subheader[0].value.startswith("Source 2")
    at.number_input(key="jump_to").set_value(3).run()
    clean(at)
    assert at.subheader[0].value.startswith("Source 2")  # stayed
    assert markdown_text("being reviewed by bob@lab.org: left to them (a lead can open it)") in at.info[-1].value
    lead = app(study.path, monkeypatch, person("lead")).run()
    lead.switch_page("app_pages/curation.py").run()
    lead.number_input(key="jump_to").set_value(3).run()
    clean(lead)
    assert lead.subheader[0].value.startswith("Source 3")
    assert "Being reviewed by bob" in lead.warning[-1].value


def test_hosted_a_lead_accepts_one_curators_decision_a_curator_sees_no_review(study, monkeypatch):
    from test_hosted_app import app, person

    ledger.record_decision(study, 1, ["happiness"], None, "confirmed", "ann")
    bobs = ledger.record_decision(study, 1, ["surprise"], None, "relabeled", "bob")
    cur = app(study.path, monkeypatch, person("curator")).run()
    cur.switch_page("app_pages/curation.py").run()
    cur.number_input(key="jump_to").set_value(1).run()
    clean(cur)
    assert not [b for b in cur.button if b.label.startswith("Accept") or b.label in ("Fix & accept", "Reject")]
    lead = app(study.path, monkeypatch, person("lead")).run()
    lead.switch_page("app_pages/curation.py").run()
    lead.number_input(key="jump_to").set_value(1).run()
    clean(lead)
    assert [b.label for b in lead.button if b.key and (b.key.startswith("accept-") or b.key.startswith("review-"))] \
        == ["Accept ann's", "Accept bob's", "Fix & accept", "Reject"]
    button(lead, "Accept bob's").click().run()
    clean(lead)
    last = ledger.event_log(study).iloc[-1]
    assert (last["curator"], last["subject"], last["role"], last["review"], last["accepts"]) == \
        ("lead@lab.org", "sub-lead", "lead", "accept", bobs)
    assert ledger.current_ground_truth(study).set_index("source_id").loc[1, "labels"] == ["surprise"]
    assert markdown_text("accepted bob's decision") in lead.success[0].value


def test_a_lead_rejects_and_the_face_returns_to_its_curators(study, monkeypatch):
    ledger.record_decision(study, 1, ["happiness"], None, "confirmed", "ann")
    ledger.record_decision(study, 1, ["surprise"], None, "relabeled", "bob")
    at = run_page("curation", study.path, monkeypatch, curator="lea", curation_source_id=1)
    button(at, "Reject").click().run()
    clean(at)
    assert ledger.event_log(study).iloc[-1][["curator", "review", "status"]].tolist() == ["lea", "reject", "rejected"]
    at = run_page("curation", study.path, monkeypatch, curator="ann", curation_source_id=1)
    nav = next(m.value for m in at.markdown if m.value.startswith("**#"))
    assert "mine 0 decided, 3 to go" in nav and "not curated yet" in texts(at)
