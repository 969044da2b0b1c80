-- The two curation rules, written once, as views every reader uses (disfer/ledger/).
-- curation_live: decisions and resolutions that no undo reverts, with the key two curators must
--   share to agree (the sorted set of labels, or 'excluded').
-- curation_opinions: each curator's latest live decision on a source (role 'curator' only).
CREATE VIEW curation_live AS
SELECT e.event_id, e.source_id, e.curator, e.role, e.decided_at, e.labels, e.weights, e.status,
       e.note,
       CASE WHEN e.status = 'excluded' THEN 'excluded'
            ELSE array_to_string(list_sort(e.labels), '+') END AS key
FROM curation_events e
WHERE e.status <> 'undo'
  AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id);

CREATE VIEW curation_opinions AS
SELECT * FROM curation_live WHERE role = 'curator'
QUALIFY row_number() OVER (PARTITION BY source_id, curator ORDER BY event_id DESC) = 1;
