"""Complaints and recourse: a person flags a decision about a row, and someone answers it, kept or changed.

Pure helpers on plain values: the :class:`Complaint` record the store hands back, the checks the write
path applies, the queue's priority for rows under complaint, and the tidy tables the pages and exports
show. The rules of who may complain or resolve, and the one transaction, live in :mod:`hitl_core.actions`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import pandas as pd

MAX_REASON = 2000
Outcome = Literal["kept", "changed"]
OUTCOMES: dict[str, str] = {
    "kept": "the decision stands (say why)",
    "changed": "the row gets a new label, recorded as a decision",
}
COLUMNS = ("id", "row_key", "status", "reason", "created_by", "created_at", "resolution", "resolved_by",
           "resolved_at", "resolution_note", "decision_id")
LABEL_COLUMNS = ("complaints", "open_complaints", "complaint_outcome", "complaint_resolved_by", "complaint_note")


@dataclass(frozen=True)
class Complaint:
    """A flagged decision about one row: who raised it and why, and, once answered, how, by whom and why."""

    id: int
    project_id: int
    row_key: str
    reason: str
    created_by: str
    created_at: datetime
    status: Literal["open", "resolved"]
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: Outcome | None = None
    resolution_note: str = ""
    decision_id: int | None = None  # the decision a "changed" resolution recorded

    def message(self) -> str:
        """What happened to it, in one sentence (row keys and names are user text: escape before markdown)."""
        if self.status == "open":
            return f"Complaint #{self.id} on row {self.row_key} is open (raised by {self.created_by})."
        verb = "kept the decision" if self.resolution == "kept" else "changed the label"
        return f"Complaint #{self.id} on row {self.row_key} resolved: {self.resolved_by} {verb}."


def check_text(text: str | None, what: str) -> str:
    """A non-empty reason of at most ``MAX_REASON`` characters, trimmed; else a message saying what to write."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"Say why: the {what} is empty.")
    if len(text) > MAX_REASON:
        raise ValueError(f"The {what} is {len(text):,} characters; keep it under {MAX_REASON:,}.")
    return text


def check_outcome(outcome: str, new_label: str | None, classes: Sequence[str]) -> None:
    """A resolution is kept (no new label) or changed (to one of the classes); else a message saying which."""
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown outcome '{outcome}'; choose {' or '.join(OUTCOMES)}.")
    if outcome == "kept" and new_label is not None:
        raise ValueError("A complaint resolved as 'kept' leaves the label as it is; give no new label "
                         "(or resolve it as 'changed').")
    if outcome == "changed" and new_label not in classes:
        raise ValueError(f"A 'changed' resolution needs the new label: one of {', '.join(classes)}.")


def open_rows(complaints: Sequence[Complaint]) -> list[str]:
    """Rows with an open complaint, oldest complaint first, each once: the order they are asked about."""
    seen: dict[str, None] = {}
    for complaint in sorted(complaints, key=lambda c: c.id):
        if complaint.status == "open":
            seen.setdefault(complaint.row_key)
    return list(seen)


def prioritise(ranked: pd.DataFrame, complained: Sequence[str]) -> pd.DataFrame:
    """A strategy's ranking with rows under complaint first: they join the batch ahead of the strategy's picks.

    ``ranked`` is :func:`hitl_core.active.rank_pool`'s frame (``rank``, ``score``, ``in_batch``,
    ``reason``); rows of ``complained`` not in it (not in the pool) are ignored. Labelled rows are
    asked about too: a complaint is about a decision, so the row is reviewed whatever its label.
    """
    first = [k for k in complained if k in ranked.index]
    if not first:
        return ranked
    out = ranked.copy()
    rank = out["rank"].astype("Int64")
    rest = rank.notna() & ~out.index.isin(first)
    out["rank"] = (rank + len(first)).where(rest, pd.NA).astype("Int64")
    out.loc[first, "rank"] = pd.array(range(1, len(first) + 1), dtype="Int64")
    out["in_batch"] = out["in_batch"].astype(bool) | out.index.isin(first)
    out["reason"] = out["reason"].astype(object)
    out.loc[first, "reason"] = "open complaint: asked first, ahead of the strategy"
    return out


def table(complaints: Sequence[Complaint]) -> pd.DataFrame:
    """Complaints as a tidy frame in ``COLUMNS`` order, oldest first (what the export and the pages show)."""
    frame = pd.DataFrame([{c: getattr(x, c) for c in COLUMNS} for x in sorted(complaints, key=lambda x: x.id)],
                         columns=list(COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["resolved_at"] = pd.to_datetime(frame["resolved_at"], utc=True)
    frame["decision_id"] = pd.array(frame["decision_id"], dtype="Int64")
    frame["resolution_note"] = frame["resolution_note"].fillna("")
    return frame.astype({c: object for c in ("row_key", "reason", "created_by", "resolution", "resolved_by")})


def per_row(complaints: Sequence[Complaint], keys: pd.Index) -> pd.DataFrame:
    """The labels export's complaint columns for ``keys``: how many, how many open, and the latest answer.

    ``complaint_outcome`` is ``open`` while any complaint on the row is, else the latest resolution
    (``kept`` / ``changed``), empty for a row nobody complained about.
    """
    frame = table(complaints)
    out = pd.DataFrame(index=keys.astype(str))
    counts = frame["row_key"].value_counts()
    opened = frame.loc[frame["status"] == "open", "row_key"].value_counts()
    resolved = frame[frame["status"] == "resolved"].sort_values("id").drop_duplicates("row_key", keep="last")
    resolved = resolved.set_index("row_key")
    out["complaints"] = counts.reindex(out.index).fillna(0).astype(int).to_numpy()
    out["open_complaints"] = opened.reindex(out.index).fillna(0).astype(int).to_numpy()
    latest = resolved["resolution"].reindex(out.index).fillna("").astype(object)
    out["complaint_outcome"] = latest.where(out["open_complaints"] == 0, "open").to_numpy(dtype=object)
    out["complaint_resolved_by"] = resolved["resolved_by"].reindex(out.index).fillna("").to_numpy(dtype=object)
    out["complaint_note"] = resolved["resolution_note"].reindex(out.index).fillna("").to_numpy(dtype=object)
    return out.reset_index(drop=True)
