"""The curation ledger: append-only decision events and the ground truth they add up to.

Every decision is one row in `curation_events`; nothing is ever updated or deleted. Undo is one
more event (status 'undo', `undoes` = the reverted event). The rules live in SQL, once
(migration 003's views and `sql/curation_ground_truth.sql`):

- An event is *live* when it is not an undo and no undo reverts it (view `curation_live`).
- A curator's *opinion* on a source is that curator's latest live decision, role 'curator'
  (view `curation_opinions`).
- A lead's *resolution* (role 'lead', made with `resolve`) settles a source for everybody: the
  latest live resolution is the ground truth, whatever curators said before or after, until it is
  undone.
- A lead's *review* of a disagreement is a resolution too ('accept' one curator's decision, 'fix'
  with the lead's labels), or sends the face back ('reject'): earlier decisions stop counting.
- Without a resolution, when every curator's opinion agrees (same set of labels, or all
  'excluded'), the latest opinion is the ground truth; when they disagree, the source's status is
  `disputed` and its labels are the latest opinion's, provisionally, until a lead resolves it.

The ledger sits below the analysis layer (which reads the curated ground truth) and imports
nothing above the store. What uses the analysis (the review ranking, the queue, the export) lives
in `disfer.curation`.
"""

from disfer.ledger.decisions import (
    DECISION_STATUSES,
    VIEW_STATUSES,
    Decision,
    parse_labels,
    parse_weights,
    primary_label,
    suggest_status,
    validate_decision,
)
from disfer.ledger.events import (
    REVIEW_OUTCOMES,
    accept,
    decisions_today,
    event_log,
    event_summary,
    fix,
    last_event_id,
    record_decision,
    reject,
    resolve,
    review,
    undo,
)
from disfer.ledger.ground_truth import (
    GROUND_TRUTH_COLUMNS,
    curator_opinions,
    current_ground_truth,
    show_source,
)
from disfer.ledger.locks import LOCK_MINUTES, held_by_others, mark_open, may_open, next_free, open_marks
from disfer.ledger.settings import (
    MAX_TARGET,
    blind_mode,
    curation_settings,
    set_blind_mode,
    set_target_curators,
    target_curators,
)

__all__ = [
    "DECISION_STATUSES", "GROUND_TRUTH_COLUMNS", "LOCK_MINUTES", "MAX_TARGET", "REVIEW_OUTCOMES", "VIEW_STATUSES", "Decision",
    "accept", "blind_mode", "curation_settings", "current_ground_truth", "curator_opinions", "decisions_today", "event_log",
    "event_summary", "fix", "held_by_others", "last_event_id", "mark_open", "may_open", "next_free", "open_marks",
    "parse_labels", "parse_weights", "primary_label", "record_decision", "reject", "resolve", "review",
    "set_blind_mode", "set_target_curators", "show_source", "suggest_status", "target_curators", "undo",
    "validate_decision",
]
