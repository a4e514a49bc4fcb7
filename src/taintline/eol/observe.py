"""The software a case knows about, as one observations table (:data:`OBSERVATION_SCHEMA`).

Two kinds of rows, both read by SQL from the graph (never one Python object per row):

* installed software: every ``installed_on`` edge from a software or artifact node to a host
  (inventory CSV, osquery programs/apps/deb/rpm/homebrew tables, scan findings): the host, the
  install time (the edge's start) and removal time (its end), and the node's name, version,
  purl and cpe;
* SBOM components: every software or artifact node a release contains, directly or through
  nested components (``contains`` edges, at most 8 levels deep), with the release as
  container and no host.
"""

from __future__ import annotations

import pyarrow as pa

from taintline.case import Case
from taintline.eol.match import OBSERVATION_SCHEMA

MAX_DEPTH = 8

_SQL = f"""
WITH RECURSIVE parts(container, kind, key, depth) AS (
    SELECT src_key, dst_kind, dst_key, 1 FROM edges
    WHERE kind = 'contains' AND src_kind = 'release' AND dst_kind IN ('software', 'artifact')
    UNION
    SELECT p.container, e.dst_kind, e.dst_key, p.depth + 1
    FROM parts p JOIN edges e ON e.kind = 'contains' AND e.src_kind = p.kind
                              AND e.src_key = p.key
    WHERE p.depth < {MAX_DEPTH} AND e.dst_kind IN ('software', 'artifact')
),
rows AS (
    SELECT lower(e.dst_key) AS host, NULL::VARCHAR AS container, e.src_kind AS kind,
           e.src_key AS key, e.valid_from AS installed_at, e.valid_until AS removed_at,
           e.source
    FROM edges e
    WHERE e.kind = 'installed_on' AND e.dst_kind = 'host'
      AND e.src_kind IN ('software', 'artifact')
    UNION ALL
    SELECT DISTINCT NULL, container, kind, key, NULL::TIMESTAMP, NULL::TIMESTAMP, NULL
    FROM parts
)
SELECT r.host, r.container, r.kind || ':' || r.key AS node,
       json_extract_string(n.attrs, '$.name') AS name,
       json_extract_string(n.attrs, '$.version') AS version,
       json_extract_string(n.attrs, '$.purl') AS purl,
       json_extract_string(n.attrs, '$.cpe') AS cpe,
       r.installed_at, r.removed_at, r.source
FROM rows r JOIN nodes n ON n.kind = r.kind AND n.key = r.key
WHERE json_extract_string(n.attrs, '$.name') IS NOT NULL
   OR json_extract_string(n.attrs, '$.purl') IS NOT NULL
   OR json_extract_string(n.attrs, '$.cpe') IS NOT NULL
"""  # noqa: S608  (constant SQL)


def observations(case: Case) -> pa.Table:
    """Every installed program and SBOM component in the case, one row each."""
    table = case.con.cursor().sql(_SQL).to_arrow_table()
    return table.cast(OBSERVATION_SCHEMA)
