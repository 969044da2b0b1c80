"""Curation above the analysis: the review queue (in the analysis layer's review ranking), agreement
between curators, the evidence a curator looks at, and the curated dataset's export.

The ledger of decisions and the ground truth it adds up to are one layer down, in `disfer.ledger`,
so the analysis can read curated labels without importing this package.
"""

from disfer.curation.agreement import CuratorAgreement, curator_agreement
from disfer.curation.evidence import SourceEvidence, soft_label_from_votes, source_evidence
from disfer.curation.queue import QueueProgress, queue_order, queue_progress, review_queue, with_locks

__all__ = ["CuratorAgreement", "QueueProgress", "SourceEvidence", "curator_agreement", "queue_order",
           "queue_progress", "review_queue",
           "soft_label_from_votes", "source_evidence", "with_locks"]
