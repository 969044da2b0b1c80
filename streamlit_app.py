"""DisFER Studio dashboard: the router and the shared frame. Pages live in app_pages/, one file each.

Run with `make run` (or `streamlit run streamlit_app.py`). The store is $DISFER_DB or
data/disfer.duckdb.
"""

import os

# Set before anything imports torch (its OpenMP runtime reads it once, at load): idle OpenMP threads
# sleep instead of spinning. One server serves many sessions, and with spinning threads a core taken
# by anyone else made one face's saliency maps 20-40x slower (measured on 2 busy cores, mini-Xception:
# Grad-CAM 0.69 s, Gradient SHAP 2.2 s spinning; 0.03 s and 0.21 s sleeping; benchmarks/bench_saliency.py).
# Batch inference and training in the CLI keep OpenMP's default (spinning is faster on a quiet machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402 - after the line above, on purpose

import streamlit as st  # noqa: E402

from app_identity import gate, hosted, rate_page, sidebar_identity  # noqa: E402
from disfer.access import may  # noqa: E402

st.set_page_config(page_title="DisFER Studio", layout="wide")

# (file, title, icon, the action a role needs to see the page: disfer.access.ACTIONS)
PAGES = [
    ("app_pages/overview.py", "Overview", ":material/dashboard:", "view"),
    ("app_pages/stimuli.py", "Stimuli", ":material/grid_view:", "view"),
    ("app_pages/robustness.py", "Robustness", ":material/show_chart:", "view"),
    ("app_pages/confusion.py", "Confusion", ":material/apps:", "view"),
    ("app_pages/agreement.py", "Agreement", ":material/groups:", "view"),
    ("app_pages/audit.py", "Label audit", ":material/fact_check:", "view"),
    ("app_pages/saliency.py", "Saliency", ":material/visibility:", "view"),
    ("app_pages/curation.py", "Curation", ":material/edit_note:", "curate"),
    ("app_pages/export.py", "Export", ":material/download:", "export"),
    ("app_pages/finetune.py", "Fine-tuning", ":material/model_training:", "finetune"),
    ("app_pages/upload.py", "Upload", ":material/upload:", "upload"),
    ("app_pages/study.py", "Crowd study", ":material/how_to_reg:", "settings"),
    ("app_pages/admin.py", "Admin", ":material/admin_panel_settings:", "audit"),
]

# Nothing of the study before this line: in hosted mode it stops every route at the sign-in.
actor = gate()
if hosted():
    sidebar_identity(actor)
here = Path(__file__).parent
# The navigation is built from the role: a page the role may not see is not registered, so its
# URL answers "page not found"; the writes it would make check the role again anyway.
# The crowd study's participant page (/rate) is registered for everyone and listed for no one.
st.navigation([st.Page(str(here / path), title=title, icon=icon)
               for path, title, icon, action in PAGES if may(actor.role, action)] + [rate_page()],
              expanded=True).run()  # every page listed (by default streamlit folds all past the 10th)
