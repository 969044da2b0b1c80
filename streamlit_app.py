"""DisFER Studio dashboard: the router and the shared frame. Pages live in pages/, one file each.

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
    ("pages/overview.py", "Overview", ":material/dashboard:", "view"),
    ("pages/stimuli.py", "Stimuli", ":material/grid_view:", "view"),
    ("pages/robustness.py", "Robustness", ":material/show_chart:", "view"),
    ("pages/confusion.py", "Confusion", ":material/apps:", "view"),
    ("pages/agreement.py", "Agreement", ":material/groups:", "view"),
    ("pages/audit.py", "Label audit", ":material/fact_check:", "view"),
    ("pages/saliency.py", "Saliency", ":material/visibility:", "view"),
    ("pages/curation.py", "Curation", ":material/edit_note:", "curate"),
    ("pages/export.py", "Export", ":material/download:", "export"),
    ("pages/finetune.py", "Fine-tuning", ":material/model_training:", "finetune"),
    ("pages/upload.py", "Upload", ":material/upload:", "upload"),
    ("pages/study.py", "Crowd study", ":material/how_to_reg:", "settings"),
    ("pages/admin.py", "Admin", ":material/admin_panel_settings:", "audit"),
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
               for path, title, icon, action in PAGES if may(actor.role, action)] + [rate_page()]).run()
