"""The audit trail and the labels as tidy tables, and those tables as files safe to open in a spreadsheet.

Used by the Audit page (views and downloads) and by ``python -m hitl_core export``. Every table
is read from the store, never from a page's session, so the app and the CLI export the same thing.
Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage
return first: OWASP's CSV injection) are written with a leading ``'`` in both CSV and Parquet.
"""
from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from hitl_core import complaints
from hitl_core.data import Dataset
from hitl_core.loop import effective_labels
from hitl_core.models import FittedModel, predict_with_confidence
from hitl_core.store import Store

Table = Literal["labels", "decisions", "events", "complaints"]
Format = Literal["csv", "parquet"]
TABLES: dict[str, str] = {
    "labels": "one row per dataset row: given and effective label, who decided, the current model's prediction",
    "decisions": "every human decision, with the prediction and confidence the person saw",
    "events": "every change anybody made: who, when, what, before → after",
    "complaints": "every complaint about a decision: who raised it and why, and how it was resolved, by whom, why",
}
FORMATS: dict[str, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

LABEL_COLUMNS = ("row_key", "split", "given_label", "effective_label", "decided_by", "decided_at", "n_decisions",
                 "predicted", "confidence", "model_version", *complaints.LABEL_COLUMNS)
DECISION_COLUMNS = ("id", "row_key", "user", "created_at", "action", "old_label", "new_label", "predicted_label",
                    "confidence", "model_version", "note")
EVENT_COLUMNS = ("id", "project_id", "actor", "created_at", "action", "object", "row_key", "change", "before",
                 "after", "note")

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# "-3.5" or "+1e-3" cannot run anything: left as is, so text labels such as "-1" survive a round trip
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ROW_OBJECT = "row "  # events about one row name it "row <key>" (hitl_core.actions)


# --------------------------------------------------------------------------- tables
def labels_table(dataset: Dataset, decisions: pd.DataFrame, model: FittedModel | None, classes: Sequence[str], *,
                 model_version: int | None = None, threads: int = 1,
                 complained: Sequence[complaints.Complaint] = ()) -> pd.DataFrame:
    """One row per dataset row: its split, given and effective label, the latest decision, the model's prediction,
    and the complaints about it (how many, how many open, the latest resolution: who and why).

    Parameters
    ----------
    dataset : the project's dataset (all splits)
    decisions : ``Store.decisions`` frame; the effective label is the latest decision, else the given label
    model : the current version's fitted model; ``None`` leaves ``predicted`` and ``confidence`` empty
    classes : the schema's classes, in order (the columns of the model's probabilities)
    model_version : the version number written beside each prediction
    complained : the project's complaints (``Store.complaints``)

    Returns
    -------
    DataFrame with ``LABEL_COLUMNS``; ``decided_by`` is empty and ``decided_at`` missing for rows no
    person decided on; ``confidence`` is the top-class probability.
    """
    keys = dataset.frame.index
    given = dataset.labels.reindex(keys)
    effective = effective_labels(dataset.labels, decisions).reindex(keys)
    if decisions.empty:
        latest = pd.DataFrame({"user": pd.Series(dtype=object), "created_at": pd.Series(dtype="datetime64[ns, UTC]")})
        counts = pd.Series(dtype=int)
    else:
        ordered = decisions.sort_values("id")
        latest = ordered.drop_duplicates("row_key", keep="last").set_index("row_key")
        counts = ordered["row_key"].value_counts()
    if model is not None:
        preds = predict_with_confidence(model, dataset.features, tuple(classes), threads=threads)
        predicted, confidence = preds.labels, preds.confidence
    else:
        predicted, confidence = np.full(len(keys), None, dtype=object), np.full(len(keys), np.nan)
    return pd.DataFrame({
        "row_key": keys.astype(str).to_numpy(dtype=object),
        "split": dataset.split.reindex(keys).to_numpy(dtype=object),
        "given_label": _text_or_none(given),
        "effective_label": _text_or_none(effective),
        "decided_by": latest["user"].reindex(keys).fillna("").to_numpy(dtype=object),
        "decided_at": pd.to_datetime(latest["created_at"].reindex(keys), utc=True).array,
        "n_decisions": counts.reindex(keys).fillna(0).astype(int).to_numpy(),
        "predicted": predicted,
        "confidence": np.asarray(confidence, dtype=float),
        "model_version": pd.array([model_version] * len(keys), dtype="Int64"),
        **{c: v.to_numpy() for c, v in complaints.per_row(complained, keys).items()},
    }, columns=list(LABEL_COLUMNS))


def decisions_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """Every decision, oldest first, in ``DECISION_COLUMNS`` order (``model_version`` as whole numbers)."""
    table = decisions.reindex(columns=list(DECISION_COLUMNS)).sort_values("id").reset_index(drop=True)
    table["model_version"] = pd.array(pd.to_numeric(table["model_version"]), dtype="Int64")
    table["confidence"] = pd.to_numeric(table["confidence"]).astype(float)
    table["created_at"] = pd.to_datetime(table["created_at"], utc=True)
    table["note"] = table["note"].fillna("")
    return table


def events_table(events: pd.DataFrame) -> pd.DataFrame:
    """Every event, oldest first: the row it is about (if any), the change in words, before/after as JSON text.

    ``before`` and ``after`` stay JSON (a script can parse them) but are rewritten readably: non-ASCII
    characters as themselves instead of ``\\u00e9`` escapes. ``change`` reads "label: yes → no".
    """
    table = events.reindex(columns=[c for c in EVENT_COLUMNS if c not in ("row_key", "change")])
    table = table.sort_values("id").reset_index(drop=True)
    table["created_at"] = pd.to_datetime(table["created_at"], utc=True)
    objects = table["object"].fillna("").astype(str)
    table["row_key"] = [o[len(_ROW_OBJECT):] if o.startswith(_ROW_OBJECT) else "" for o in objects]
    table["change"] = [describe_change(b, a) for b, a in zip(table["before"], table["after"])]
    table["before"] = [_readable_json(v) for v in table["before"]]
    table["after"] = [_readable_json(v) for v in table["after"]]
    table["note"] = table["note"].fillna("")
    return table.reindex(columns=list(EVENT_COLUMNS))


def describe_change(before: str | dict | None, after: str | dict | None) -> str:
    """Before → after in words: ``"label: yes → no"``, ``"threshold: 0.7 → 0.6"``, ``"label: yes (unchanged)"``.

    Keys only in ``after`` are listed as set (``"job: 3"``), keys only in ``before`` as they were
    (``"current was 1"``); empty values are left out.
    """
    old, new = _as_dict(before), _as_dict(after)
    parts = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] == new[key]:
                parts.append(f"{key}: {_value(key, new[key])} (unchanged)")
            else:
                parts.append(f"{key}: {_value(key, old[key])} → {_value(key, new[key])}")
        elif key in new:
            if new[key] not in ("", None, [], {}):
                parts.append(f"{key}: {_value(key, new[key])}")
        elif old[key] is not None:
            parts.append(f"{key} was {_value(key, old[key])}")
    return "; ".join(parts)


def export(store: Store, project_id: int, what: Table, *, threads: int = 1) -> pd.DataFrame:
    """One project's table as stored now: labels (with the current version's predictions), decisions or events."""
    if what == "labels":
        project = store.project(project_id)
        version = store.current_version(project_id)
        model = store.load_model(project_id, version.version) if version is not None else None
        return labels_table(store.load_dataset(project), store.decisions(project_id), model, project.schema.classes,
                            model_version=version.version if version is not None else None, threads=threads,
                            complained=store.complaints(project_id))
    if what == "decisions":
        return decisions_table(store.decisions(project_id))
    if what == "events":
        return events_table(store.events(project_id))
    if what == "complaints":
        return complaints.table(store.complaints(project_id))
    raise ValueError(f"Unknown table '{what}'; choose one of {', '.join(TABLES)}.")


# --------------------------------------------------------------------------- filtering (the Audit page's view)
def filter_trail(table: pd.DataFrame, *, people: Sequence[str] = (), actions: Sequence[str] = (),
                 row_key: str = "", start: date | None = None, end: date | None = None,
                 person_column: str = "user") -> pd.DataFrame:
    """Rows of a decisions or events table by any of ``people``, any of ``actions``, on one row, between two dates.

    An empty filter keeps everything; ``start`` and ``end`` are UTC calendar days, both included.
    """
    keep = pd.Series(True, index=table.index)
    if people:
        keep &= table[person_column].isin(list(people))
    if actions:
        keep &= table["action"].isin(list(actions))
    if row_key.strip():
        keep &= table["row_key"].astype(str) == row_key.strip()
    if start is not None:
        keep &= table["created_at"] >= pd.Timestamp(start, tz="UTC")
    if end is not None:
        keep &= table["created_at"] < pd.Timestamp(end + timedelta(days=1), tz="UTC")
    return table[keep]


# --------------------------------------------------------------------------- files
def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy where text a spreadsheet would run as a formula starts with ``'`` (shown as text, not run).

    Text cells (and column names) starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
    get the prefix, as OWASP advises against CSV injection. Numbers stay numbers: numeric columns
    are untouched, and so is text that is just a number (``"-1"``), which no spreadsheet runs.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out[column] = values.cat.rename_categories(
                {c: _neutral(c) for c in values.cat.categories if _neutral(c) != c})
        elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            out[column] = values.map(_neutral, na_action="ignore")
    out.columns = [_neutral(c) for c in out.columns]
    return out


def write_table(frame: pd.DataFrame, fmt: Format) -> bytes:
    """A table as CSV (UTF-8, no index) or Parquet bytes, formulas neutralised in both.

    Parquet too, because spreadsheets and BI tools open it as well.
    """
    safe = neutralise_formulas(frame)
    if fmt == "csv":
        return safe.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        buffer = io.BytesIO()
        safe.to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise ValueError(f"Unknown format '{fmt}'; choose one of {', '.join(FORMATS)}.")


# --------------------------------------------------------------------------- helpers
def _neutral(value):
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _text_or_none(labels: pd.Series) -> np.ndarray:
    return np.array([None if pd.isna(v) else str(v) for v in labels], dtype=object)


def _as_dict(value: str | dict | None) -> dict:
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"value": value}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _readable_json(value: str | None) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        return json.dumps(json.loads(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _value(key: str, value) -> str:
    if value is None:
        return "unlabeled" if key == "label" else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
