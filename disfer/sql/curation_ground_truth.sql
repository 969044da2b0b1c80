-- The current ground truth per source, from the append-only curation_events (see disfer/curation.py).
-- live: decisions and resolutions no undo reverts. opinions: each curator's latest live decision.
-- A lead's latest live resolution wins; else the latest opinion, 'disputed' when opinions differ.
WITH live AS (
    SELECT e.event_id, e.source_id, e.curator, coalesce(e.role, 'curator') AS role, e.decided_at,
           e.labels, e.weights, e.status, s.original_label,
           CASE WHEN e.status = 'excluded' THEN 'excluded'
                ELSE array_to_string(list_sort(e.labels), '+') END AS key
    FROM curation_events e JOIN sources s USING (source_id)
    WHERE e.status <> 'undo'
      AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id)
),
opinions AS (
    SELECT * FROM live WHERE role = 'curator'
    QUALIFY row_number() OVER (PARTITION BY source_id, curator ORDER BY event_id DESC) = 1
),
op_summary AS (
    SELECT source_id, count(*) AS n_curators, count(DISTINCT key) AS n_keys, max(event_id) AS latest
    FROM opinions GROUP BY source_id
),
lead AS (
    SELECT source_id, max(event_id) AS latest FROM live WHERE role = 'lead' GROUP BY source_id
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
       e.curator, e.decided_at, c.event_id, e.original_label, c.resolved, c.n_curators
FROM chosen c JOIN live e ON e.event_id = c.event_id
ORDER BY c.source_id
