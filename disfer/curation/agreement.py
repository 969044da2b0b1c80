"""Agreement between curators: Cohen's kappa per pair on their common sources, and the disputes."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from disfer.ledger import curator_opinions, current_ground_truth
from disfer.store import Store


@dataclass
class CuratorAgreement:
    pairs: pd.DataFrame
    """curator_a, curator_b, n_common (sources both decided), agreement (share with the same key),
    kappa (Cohen's kappa over the keys; NaN with fewer than 2 common sources or one category)."""
    disagreements: pd.DataFrame
    """source_id, opinions ({curator: key}), resolved (a lead's resolution stands), resolution."""


def curator_agreement(store: Store) -> CuratorAgreement:
    """Cohen's kappa for every pair of curators on their common sources, and the disputed sources."""
    # Imported here for speed: scikit-learn costs most of a second, and `disfer curate set` never
    # needs it.
    from sklearn.metrics import cohen_kappa_score

    ops = curator_opinions(store)
    gt = current_ground_truth(store)
    pairs = []
    by_curator = {c: g.set_index("source_id")["key"] for c, g in ops.groupby("curator")}
    for a, b in combinations(sorted(by_curator), 2):
        common = by_curator[a].index.intersection(by_curator[b].index)
        ka, kb = by_curator[a].loc[common], by_curator[b].loc[common]
        agreement = float((ka.values == kb.values).mean()) if len(common) else float("nan")
        kappa = float("nan")
        if len(common) >= 2 and len(set(ka) | set(kb)) > 1:
            kappa = float(cohen_kappa_score(list(ka), list(kb)))
        pairs.append({"curator_a": a, "curator_b": b, "n_common": int(len(common)),
                      "agreement": agreement, "kappa": kappa})
    resolved = gt.set_index("source_id") if not gt.empty else None
    n_keys = ops.groupby("source_id")["key"].nunique()
    rows = []
    for source_id, group in ops[ops["source_id"].isin(n_keys[n_keys > 1].index)].groupby("source_id"):
        res = resolved.loc[source_id] if resolved is not None and source_id in resolved.index else None
        is_resolved = bool(res is not None and res["resolved"])
        rows.append({"source_id": int(source_id),
                     "opinions": dict(zip(group["curator"], group["key"], strict=True)),
                     "resolved": is_resolved,
                     "resolution": res["key"] if is_resolved else None})
    return CuratorAgreement(
        pairs=pd.DataFrame(pairs, columns=["curator_a", "curator_b", "n_common", "agreement", "kappa"]),
        disagreements=pd.DataFrame(rows, columns=["source_id", "opinions", "resolved", "resolution"]),
    )
