"""Several people per row: each person's vote, the majority, ties and low agreement for the lead, and the
label that trains the model (adjudicated, else consensus, else the latest decision, else the given one).

Pure functions over the decisions frame of :meth:`hitl_core.store.Store.decisions` (``id``, ``row_key``,
``user``, ``new_label``, ``kind``). A row with only plain decisions (one reviewer per row, the default)
keeps the old rule: the latest decision wins. As soon as a row has a vote, every person's latest label
on it counts once.
"""
from __future__ import annotations

import pandas as pd

VOTE_KINDS = ("vote", "workshop")
ADJUDICATION = "adjudication"
MIN_AGREEMENT = 2 / 3  # below this share for the majority, a row goes to the lead even without a tie


def _kinds(decisions: pd.DataFrame) -> pd.Series:
    return decisions["kind"] if "kind" in decisions else pd.Series("decision", index=decisions.index)


def has_votes(decisions: pd.DataFrame) -> bool:
    """True when any decision is a vote or an adjudication (then consensus rules apply)."""
    return bool(len(decisions)) and bool(_kinds(decisions).isin((*VOTE_KINDS, ADJUDICATION)).any())


def person_votes(decisions: pd.DataFrame) -> pd.DataFrame:
    """Each person's latest label per row (adjudications apart): ``row_key, user, label, kind, id``."""
    if decisions.empty:
        return pd.DataFrame(columns=["row_key", "user", "label", "kind", "id"])
    ordered = decisions.assign(kind=_kinds(decisions)).sort_values("id")
    ordered = ordered[ordered["kind"] != ADJUDICATION]
    latest = ordered.groupby(["row_key", "user"], sort=False).tail(1)
    return latest.rename(columns={"new_label": "label"})[["row_key", "user", "label", "kind", "id"]] \
        .reset_index(drop=True)


def row_consensus(decisions: pd.DataFrame, *, min_agreement: float = MIN_AGREEMENT) -> pd.DataFrame:
    """Per voted row: votes, majority label (None on a tie), its share, the adjudicated label, and whether
    the lead must decide (a tie or agreement below ``min_agreement``, not yet adjudicated)."""
    columns = ["n_votes", "majority", "agreement", "tie", "adjudicated", "needs_adjudication", "label"]
    kinds = _kinds(decisions)
    voted = decisions.loc[kinds.isin(VOTE_KINDS), "row_key"].unique()
    adjudicated = decisions[kinds == ADJUDICATION].sort_values("id").groupby("row_key")["new_label"].last()
    rows = pd.Index(voted).union(adjudicated.index)
    if not len(rows):
        return pd.DataFrame(columns=columns, index=pd.Index([], name="row_key"))
    votes = person_votes(decisions[decisions["row_key"].isin(rows)])
    counts = votes.groupby(["row_key", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["row_key", "n", "label"], ascending=[True, False, True])
    top = counts.groupby("row_key").head(2).assign(place=lambda f: f.groupby("row_key").cumcount())
    first = top[top["place"] == 0].set_index("row_key")
    second = top[top["place"] == 1].set_index("row_key")["n"].reindex(first.index).fillna(0)
    n_votes = votes.groupby("row_key").size()
    out = pd.DataFrame(index=rows.rename("row_key"))
    out["n_votes"] = n_votes.reindex(rows).fillna(0).astype(int)
    out["tie"] = (first["n"] == second).reindex(rows).fillna(False).astype(bool)
    out["majority"] = first["label"].reindex(rows).astype(object).where(~out["tie"], None)
    out["agreement"] = (first["n"] / n_votes).reindex(rows).astype(float)
    out["adjudicated"] = adjudicated.reindex(rows).astype(object)
    out["adjudicated"] = out["adjudicated"].where(out["adjudicated"].notna(), None)
    contested = out["tie"] | ((out["n_votes"] >= 2) & (out["agreement"] < min_agreement))
    out["needs_adjudication"] = contested & out["adjudicated"].isna()
    out["label"] = out["adjudicated"].where(out["adjudicated"].notna(), out["majority"])
    return out[columns]


def decided_labels(decisions: pd.DataFrame) -> pd.Series:
    """The human label per decided row: adjudicated, else the majority of votes, else the latest plain decision.

    Rows whose votes tie (and no one adjudicated) are absent: the given label, if any, stays in force.
    """
    ordered = decisions.sort_values("id")
    if not has_votes(ordered):
        return ordered.groupby("row_key", sort=False)["new_label"].last()
    consensus = row_consensus(ordered)
    plain = ordered[~ordered["row_key"].isin(consensus.index)].groupby("row_key", sort=False)["new_label"].last()
    voted = consensus["label"].dropna()
    return pd.concat([plain, voted]).astype(object)


def adjudication_queue(decisions: pd.DataFrame, *, min_agreement: float = MIN_AGREEMENT) -> pd.DataFrame:
    """Rows the lead must settle, ties first then the lowest agreement, with every vote listed."""
    queue = disputed(row_consensus(decisions, min_agreement=min_agreement))
    if queue.empty:
        return queue.assign(votes=pd.Series(dtype=object))
    votes = person_votes(decisions[decisions["row_key"].isin(queue.index)])
    listed = votes.groupby("row_key").apply(
        lambda f: ", ".join(f"{u}: {lab}" for u, lab in zip(f["user"], f["label"])), include_groups=False)
    return queue.assign(votes=listed.reindex(queue.index))


def disputed(consensus: pd.DataFrame) -> pd.DataFrame:
    """The rows of a :func:`row_consensus` frame the lead must settle, ties first then the lowest agreement."""
    queue = consensus[consensus["needs_adjudication"].astype(bool)]
    return queue.sort_values(["tie", "agreement"], ascending=[False, True])
