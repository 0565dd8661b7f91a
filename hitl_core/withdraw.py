"""Withdrawal of a data subject's rows: what must go, found generically, and how stored text is redacted.

Pure helpers for :func:`hitl_core.actions.withdraw_rows`. A row lives on in more places than the
dataset: every table with ``project_id`` and ``row_key`` columns (decisions, complaints, votes,
batches, feedback, caches…, found from the schema, not from a list that a new feature would
forget), the audit trail (events name the row and its labels), old model files (a one-hot
encoder's categories hold a category only a removed row had) and text in stored metrics (fairness
group names). This module decides *what* to remove or redact; the store runs the statements.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import MetaData, Table

from hitl_core.data import Schema
from hitl_core.model_files import UntrustedModel

MODEL_WITHDRAWN = "withdrawn"  # model_versions.model_format of a version whose model file was dropped
REDACTED = "[withdrawn]"
ROW_COLUMNS = ("project_id", "row_key")
MIN_ANYWHERE = 6  # values this long are distinctive: redacted inside longer words too
_ROW_OBJECT = "row "  # events about one row name it "row <key>" (hitl_core.actions)


class ModelWithdrawn(UntrustedModel):
    """A version whose model file was dropped by a withdrawal: it can be listed, never loaded or restored."""


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal removed: counts only, never the rows' keys or values."""

    project_ids: tuple[int, ...]
    n_rows: int
    removed: dict[str, int] = field(default_factory=dict)  # table → records about the rows deleted
    events_deleted: int = 0
    events_redacted: int = 0
    dropped_versions: dict[int, list[int]] = field(default_factory=dict)  # project → versions without a model now
    new_versions: dict[int, int] = field(default_factory=dict)  # project → the version trained without the rows
    compacted: bool = False  # SQLite: VACUUM and a truncating WAL checkpoint completed

    def message(self) -> str:
        """What happened, for the page and the CLI (no key, no value of the removed rows)."""
        projects = ", ".join(f"#{p}" for p in self.project_ids)
        dropped = sum(len(v) for v in self.dropped_versions.values())
        text = (f"Withdrew {self.n_rows:,} row(s) from project(s) {projects}: removed from the dataset and "
                f"{sum(self.removed.values()):,} stored record(s) about them, "
                f"{self.events_deleted:,} audit event(s) about them deleted and {self.events_redacted:,} redacted; "
                f"{dropped:,} older model file(s) dropped (they could hold the removed values). New version(s): "
                + ", ".join(f"v{v} of #{p}" for p, v in self.new_versions.items()) + ".")
        if len(self.project_ids) > 1:
            text += " The projects shared one stored dataset, so the rows were withdrawn from each of them."
        return text


def row_tables(metadata: MetaData) -> list[Table]:
    """Every table holding something about a dataset row (``project_id`` and ``row_key`` columns), dependents
    first so that deleting in this order never breaks a foreign key."""
    return [t for t in reversed(metadata.sorted_tables) if all(c in t.columns for c in ROW_COLUMNS)]


def check_keys(row_keys: Iterable[object], dataset_keys: pd.Index) -> list[str]:
    """The distinct keys asked for, all in the dataset; else a message naming (some of) the unknown ones."""
    keys = list(dict.fromkeys(str(k).strip() for k in row_keys if str(k).strip()))
    if not keys:
        raise ValueError("Name the rows to withdraw: give at least one row key (the ID column's value).")
    known = set(dataset_keys.astype(str))
    missing = [k for k in keys if k not in known]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValueError(f"No row {shown} in this project's data; use row keys exactly as on the Review page "
                         "(nothing was withdrawn).")
    if len(keys) >= len(known):
        raise ValueError("That is every row of the project: delete the project instead of withdrawing all rows.")
    return keys


def vanishing_values(frame: pd.DataFrame, keys: Sequence[str], schema: Schema) -> list[str]:
    """Text that only the removed rows hold: their keys and every category no kept row shares.

    These are what must not survive anywhere (events, stored metrics' group names). The class names
    are the schema's, not a person's, so they are never among them; numbers are never stored as text.
    """
    removed = frame.index.astype(str).isin(list(keys))
    found: set[str] = set(keys)
    for column in frame.columns:
        values = frame[column]
        if column == schema.target or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype(str)
        mask = pd.Series(removed, index=frame.index).loc[text.index].to_numpy()
        found |= set(text[mask]) - set(text[~mask])
    return sorted(v for v in found - set(schema.classes) if v.strip())


def pattern(values: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``values``: a value of ``MIN_ANYWHERE`` characters or more wherever it occurs
    ("Welders" holds "Welder"), a shorter one only as a whole token ("row 12", not inside "120")."""
    if not values:
        return None
    ordered = sorted(values, key=len, reverse=True)
    anywhere = "|".join(re.escape(v) for v in ordered if len(v) >= MIN_ANYWHERE)
    short = "|".join(re.escape(v) for v in ordered if len(v) < MIN_ANYWHERE)
    parts = ([anywhere] if anywhere else []) + ([rf"(?<![0-9A-Za-z])(?:{short})(?![0-9A-Za-z])"] if short else [])
    return re.compile("|".join(f"(?:{p})" for p in parts))


def redact(value: object, secrets: re.Pattern[str] | None) -> object:
    """``value`` (text or parsed JSON) with every secret token replaced by ``[withdrawn]``, keys included."""
    if secrets is None:
        return value
    if isinstance(value, str):
        return secrets.sub(REDACTED, value)
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def redact_json(text: str | None, secrets: re.Pattern[str] | None) -> str | None:
    """A JSON text with its strings redacted (``None`` stays ``None``; text that is not JSON is redacted as text)."""
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return str(redact(text, secrets))
    return json.dumps(redact(parsed, secrets))


def row_objects(keys: Sequence[str]) -> list[str]:
    """The ``events.object`` of events about these rows ("row <key>"): deleted, not redacted."""
    return [f"{_ROW_OBJECT}{k}" for k in keys]


def search_terms(values: Sequence[str]) -> list[str]:
    """Each value as stored text may hold it: itself, and JSON's escaped form ("Zoë" is "Zo\\u00eb" in an event)."""
    return list(dict.fromkeys(t for v in values for t in (v, json.dumps(v)[1:-1])))
