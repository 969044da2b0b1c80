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
PAGE = str(ROOT / "app_pages" / "finetune.py")


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


def _in_order(node) -> list[str]:
    """The page's text in display order: subheaders, infos, expander labels, metric labels."""
    out = []
    for child in getattr(node, "children", {}).values():
        kind = getattr(child, "type", "")
        if kind in ("subheader", "info", "warning", "caption"):
            out.append(f"{kind}: {child.value}")
        elif kind in ("expander", "metric"):
            out.append(f"{kind}: {child.label}")
        out += _in_order(child)
    return out


def test_button_trains_a_variant_and_compares_it_with_its_parent_on_held_out_faces_first(built_study):
    from disfer.models import list_models

    if not next(m for m in list_models() if m.name == "minixception").weights_present:
        pytest.skip("mini-Xception weights absent")
    at = _page(built_study.path)
    assert not at.exception
    assert any("No fine-tuned variant" in i.value for i in at.info)
    assert _widget(at.radio, "Protocol").value == "external"   # the clean protocol is the default
    assert _widget(at.number_input, "Epochs").max == 50        # capped for every visitor
    _widget(at.selectbox, "Start from").set_value("minixception")
    _widget(at.selectbox, "Distortion").set_value("gaussian_blur")
    _widget(at.selectbox, "Device").set_value("cpu")
    _widget(at.number_input, "Epochs").set_value(2)
    _widget(at.number_input, "Batches per epoch").set_value(1)
    _widget(at.number_input, "Images per emotion per batch").set_value(1)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    variant = "minixception-ft-external-gaussian_blur"
    # the variant's name is stored text: shown escaped (app_common.md), as exactly its characters
    assert any(markdown_text(variant) in s.value for s in at.success)
    order = _in_order(at.main)
    first_held = next(i for i, t in enumerate(order) if t.startswith("subheader: Held-out faces only"))
    all_stimuli = next(i for i, t in enumerate(order) if "Before / after on all stimuli" in t)
    assert first_held < all_stimuli
    assert any(m.label == "McNemar p (exact)" for m in at.metric)
    assert any("280 held-out stimuli" in c.value for c in at.caption)
    with built_study.read() as con:
        n = con.execute("SELECT count(*) FROM predictions WHERE model_id = ?", [variant]).fetchone()[0]
    assert n == 280
    # the before/after table (all stimuli) lists the parent and the child
    drops = [df.value for df in at.dataframe]
    raters = set().union(*(set(d["rater"]) for d in drops if "rater" in d))
    assert {"minixception", variant} <= raters

    # The paper's protocol trains on every study face: no held-out number, and the all-stimuli
    # figure says it includes training images.
    _widget(at.radio, "Protocol").set_value("paper")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("No held-out face" in i.value for i in at.info)
    assert any("includes training images" in e.label for e in at.expander)
    assert any("includes training images" in c.value for c in at.caption)


def test_bad_configuration_is_shown_not_raised(built_study):
    at = _page(built_study.path)
    _widget(at.selectbox, "Start from").set_value("minixception")
    _widget(at.radio, "Protocol").set_value("curated")
    at.button[0].click().run()
    assert not at.exception
    assert any("no curated labels yet" in e.value for e in at.error)
