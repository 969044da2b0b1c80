"""The analysis layer: pure functions over a study (humans and models as raters of one trial table).

Most functions accept a `Study` (from `load_study(store)`, loaded once and reused), a Store (loaded
on each call) or a trial table from `load_trials`. Pages should load one Study per
`store.change_counter()` and pass it to every function.
"""

from disfer.analysis.agreement import (
    agreement_per_stimulus,
    agreement_summary,
    fleiss_kappa,
    pairwise_agreement,
    pi_bins,
)
from disfer.analysis.audit import LabelAudit, label_audit, review_ranking
from disfer.analysis.confusion import confusion_matrix, offdiag_pearson, precision_recall
from disfer.analysis.consensus import dawid_skene_labels
from disfer.analysis.consistency import (
    ErrorConsistency,
    error_consistency,
    model_vs_majority,
    model_vs_participants,
    models_vs_participants,
)
from disfer.analysis.curves import robustness_curve
from disfer.analysis.humans import ParticipantAccuracy, majority_vote, participant_accuracy
from disfer.analysis.models import McNemar, cohen_kappa, mcnemar_test
from disfer.analysis.overview import crowd_agreement_per_source, crowd_summary, overview
from disfer.analysis.report import report_text, study_report
from disfer.analysis.trials import HUMANS, Study, load_study, load_trials

__all__ = [
    "ErrorConsistency", "HUMANS", "LabelAudit", "McNemar", "ParticipantAccuracy", "Study",
    "agreement_per_stimulus", "agreement_summary", "cohen_kappa", "confusion_matrix",
    "crowd_agreement_per_source", "crowd_summary", "dawid_skene_labels", "error_consistency",
    "fleiss_kappa", "label_audit", "load_study", "load_trials", "majority_vote", "mcnemar_test",
    "model_vs_majority", "model_vs_participants", "models_vs_participants", "offdiag_pearson",
    "overview", "pairwise_agreement", "participant_accuracy", "pi_bins", "precision_recall",
    "report_text", "review_ranking", "robustness_curve", "study_report",
]
