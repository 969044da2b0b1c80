"""DisFER Studio dashboard: the router and the shared frame. Pages live in app_pages/, one file each.

Run with `make run` (or `streamlit run streamlit_app.py`). The store is $DISFER_DB or
data/disfer.duckdb.
"""

from pathlib import Path

import streamlit as st

from app_identity import gate, hosted, rate_page, sidebar_identity
from disfer.access import may

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
