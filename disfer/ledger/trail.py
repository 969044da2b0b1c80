"""Who did what, when: every signed write of the store in one table (the admin page's audit trail)."""

from __future__ import annotations

import pandas as pd

from disfer.store import Store

TRAIL_COLUMNS = ["at", "who", "subject", "action", "what", "status"]


def activity_log(store: Store, limit: int | None = None) -> pd.DataFrame:
    """Newest first: at (time), who (email or name), subject (identity provider id; 'local' for
    the CLI and local use; empty for writes made before identities were recorded), action
    ('curate', 'resolve', 'undo', a lead's review 'accept', 'fix' or 'reject', or a run's kind: 'build', 'predict', 'finetune', 'export',
    'upload', ...), what (the source or the run's subject) and status."""
    sql = """
        SELECT decided_at AS at, curator AS who, coalesce(subject, '') AS subject,
               CASE WHEN status = 'undo' THEN 'undo' WHEN review IS NOT NULL THEN review
                    WHEN role = 'lead' THEN 'resolve' ELSE 'curate' END
                   AS action,
               'source ' || source_id || CASE WHEN undoes IS NULL THEN '' ELSE ' (event ' || undoes || ')' END
                   AS what,
               status
        FROM curation_events
        UNION ALL
        SELECT started_at, coalesce(actor, ''), coalesce(subject, ''), kind,
               'run ' || run_id, status
        FROM runs
        ORDER BY 1 DESC, 4
    """
    params: list = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    with store.read() as con:
        return con.execute(sql, params).df()[TRAIL_COLUMNS]
