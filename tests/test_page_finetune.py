"""The Fine-tuning page under AppTest: empty store, then a real (tiny) run from the button."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from disfer.outfiles import markdown_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import app_common from the repository root
PAGE = str(ROOT / "pages" / "finetune.py")


def _page(db: Path) -> AppTest:
    os.environ["DISFER_DB"] = str(db)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    return at


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def test_empty_store_says_what_to_load(store):
    at = _page(store.path)
    assert not at.exception
    assert any("no study yet" in i.value for i in at.info)


def test_button_trains_a_variant_and_compares_it_with_its_parent(built_study):
    from disfer.models import list_models

    if not next(m for m in list_models() if m.name == "minixception").weights_present:
        pytest.skip("mini-Xception weights absent")
    at = _page(built_study.path)
    assert not at.exception
    assert any("No fine-tuned variant" in i.value for i in at.info)
    _widget(at.selectbox, "Start from").set_value("minixception")
    _widget(at.selectbox, "Distortion").set_value("gaussian_blur")
    _widget(at.selectbox, "Device").set_value("cpu")
    _widget(at.number_input, "Epochs").set_value(2)
    _widget(at.number_input, "Batches per epoch").set_value(1)
    _widget(at.number_input, "Images per emotion per batch").set_value(1)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # the variant's name is stored text: shown escaped (app_common.md), as exactly its characters
    assert any(markdown_text("minixception-ft-gaussian_blur") in s.value for s in at.success)
    assert any("Before / after" in h.value for h in at.subheader)
    with built_study.read() as con:
        n = con.execute("SELECT count(*) FROM predictions WHERE model_id = 'minixception-ft-gaussian_blur'"
                        ).fetchone()[0]
    assert n == 280
    # the before/after table lists the parent and the child
    drops = [df.value for df in at.dataframe]
    raters = set().union(*(set(d["rater"]) for d in drops if "rater" in d))
    assert {"minixception", "minixception-ft-gaussian_blur"} <= raters


def test_bad_configuration_is_shown_not_raised(built_study):
    at = _page(built_study.path)
    _widget(at.selectbox, "Start from").set_value("minixception")
    _widget(at.radio, "Protocol").set_value("curated")
    at.button[0].click().run()
    assert not at.exception
    assert any("no curated labels yet" in e.value for e in at.error)
