-- The current ground truth per source, from the views of migration 003 (see disfer/ledger/).
-- A lead's latest live resolution wins; else the latest opinion, 'disputed' when opinions differ.
WITH op_summary AS (
    SELECT source_id, count(*) AS n_curators, count(DISTINCT key) AS n_keys, max(event_id) AS latest
    FROM curation_opinions GROUP BY source_id
),
lead AS (
    SELECT source_id, max(event_id) AS latest FROM curation_live WHERE role = 'lead' GROUP BY source_id
),
chosen AS (
    SELECT coalesce(l.source_id, o.source_id) AS source_id,
           coalesce(l.latest, o.latest) AS event_id,
           l.latest IS NOT NULL AS resolved,
           coalesce(o.n_curators, 0) AS n_curators,
           coalesce(o.n_keys, 0) AS n_keys
    FROM lead l FULL OUTER JOIN op_summary o ON o.source_id = l.source_id
)
SELECT c.source_id, e.labels, e.weights,
       CASE WHEN NOT c.resolved AND c.n_keys > 1 THEN 'disputed' ELSE e.status END AS status,
       e.curator, e.decided_at, c.event_id, s.original_label, c.resolved, c.n_curators, e.key
FROM chosen c JOIN curation_live e ON e.event_id = c.event_id JOIN sources s ON s.source_id = c.source_id
ORDER BY c.source_id
