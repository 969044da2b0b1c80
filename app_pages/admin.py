"""Admin: who did what, when (every signed write: decisions, resolutions, undo, runs, exports)."""

import streamlit as st

from app_common import cached, show_table
from app_identity import require_page
from disfer.ledger.trail import activity_log

require_page("audit")
st.title("Admin")
st.caption("Every write of the store, newest first: who (email or local name), the identity "
           "provider's subject, what and when.")
log = cached(activity_log)
if log.empty:
    st.info("Nothing has been written by anyone yet.")
else:
    show_table(log, "activity_log")
