"""DisFER Studio dashboard: the router and the shared frame. Pages live in pages/, one file each.

Run with `make run` (or `streamlit run streamlit_app.py`). The store is $DISFER_DB or
data/disfer.duckdb.
"""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="DisFER Studio", layout="wide")

PAGES = [
    ("pages/overview.py", "Overview", ":material/dashboard:"),
    ("pages/stimuli.py", "Stimuli", ":material/grid_view:"),
    ("pages/robustness.py", "Robustness", ":material/show_chart:"),
    ("pages/confusion.py", "Confusion", ":material/apps:"),
    ("pages/agreement.py", "Agreement", ":material/groups:"),
    ("pages/audit.py", "Label audit", ":material/fact_check:"),
    ("pages/saliency.py", "Saliency", ":material/visibility:"),
    ("pages/curation.py", "Curation", ":material/edit_note:"),
    ("pages/export.py", "Export", ":material/download:"),
    ("pages/finetune.py", "Fine-tuning", ":material/model_training:"),
]

here = Path(__file__).parent
st.navigation([st.Page(str(here / path), title=title, icon=icon) for path, title, icon in PAGES]).run()
