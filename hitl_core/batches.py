"""New data after deployment: check a batch of rows against a project's data, and monitor batches over time.

A batch is a table of new rows with the project's columns; the target column may be missing or
empty (unlabeled rows, the usual case after deployment). :func:`conform` refuses a bad batch with
a message that says what is wrong and how to fix it (missing or extra columns, text where numbers
belong, unknown classes, IDs the project already has, an empty file) and otherwise returns the rows
keyed and typed like the stored ones; :func:`appended` gives the project's new frame and split
(old split unchanged, new rows in the training pool). The write itself is
:func:`hitl_core.actions.add_batch`.

Monitoring is per batch, batch 0 being the project's original rows: PSI and p-values per feature
(stored with the batch when it arrived, :func:`drift_table`), the current model's predicted-class
shares and mean confidence, and the override rate: the share of a batch's reviewed rows whose
latest decision changed the model's prediction (:func:`override_rates`). Everything here is pure:
frames in, frames, strings and plotly figures out.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from hitl_core.data import DataError, Dataset, labels_as_text, row_keys
from hitl_core.markup import plotly_text
from hitl_core.records import Batch

INITIAL = 0  # the batch number of the rows a project was created with
_SHOWN = 5  # names or values quoted in a message
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", height=340)


def _quoted(items: Sequence) -> str:
    shown = ", ".join(repr(str(i)) for i in list(items)[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# --------------------------------------------------------------------------- validation
def conform(dataset: Dataset, batch: pd.DataFrame) -> pd.DataFrame:
    """The batch's rows keyed and typed like the project's, or a :class:`DataError` saying what to fix.

    Parameters
    ----------
    dataset : Dataset
        The project's rows as stored now (their columns, types, row keys and classes are the rule).
    batch : pd.DataFrame
        New rows as read from a file: every column of the project's data, the target optional
        (missing or empty = unlabeled).

    Returns
    -------
    pd.DataFrame
        The batch with the project's columns in order, indexed by new row keys (the ID column's
        values, else positions continuing after the project's highest one).
    """
    schema = dataset.schema
    if len(batch) == 0:
        raise DataError("The batch has no rows; add a file with at least one row of new data.")
    stored = dataset.frame
    columns = [str(c) for c in batch.columns]
    missing = [c for c in stored.columns if c not in columns and c != schema.target]
    if missing:
        raise DataError(f"The batch lacks column(s) {_quoted(missing)} that the project's data has; add them with "
                        "the same names (a batch needs every column of the project's file; the target may be empty).")
    extra = [c for c in columns if c not in stored.columns]
    if extra:
        raise DataError(f"The batch has column(s) {_quoted(extra)} that the project's data does not have; remove or "
                        f"rename them (the project's columns: {_quoted(list(stored.columns))}).")
    batch = batch.set_axis(columns, axis=1).reset_index(drop=True)
    unlabeled = pd.Series([None] * len(batch), dtype=object)  # no target column: every row unlabeled
    rows = pd.DataFrame({c: _like(batch[c] if c in columns else unlabeled, stored[c], c) for c in stored.columns})
    _check_labels(rows[schema.target], schema.classes, schema.target)
    rows.index = _new_keys(stored.index, rows, schema.id_column)
    return rows


def _like(values: pd.Series, stored: pd.Series, column: str) -> pd.Series:
    """One batch column with the stored column's type: numbers stay numbers, text stays text."""
    if not pd.api.types.is_numeric_dtype(stored) or pd.api.types.is_bool_dtype(stored):
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(stored):
            values = labels_as_text(values)  # a code read as a number: "7", as the project's text holds it
        return values if pd.api.types.is_bool_dtype(stored) else values.astype(stored.dtype)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():  # blank text is missing, not wrong (only the suspects are looked at: 50 ms a column at 50k rows)
        bad[bad] = labels_as_text(values[bad]).notna().to_numpy()
    if bad.any():
        where = np.flatnonzero(bad.to_numpy())
        raise DataError(f"Column '{column}' should hold numbers, as in the project's data, but {len(where)} row(s) "
                        f"hold text, e.g. row {where[0] + 1}: {values.iloc[where[0]]!r}. Fix those values or leave "
                        "them empty.")
    integral = numbers.notna().all() and (numbers % 1 == 0).all()
    return numbers.astype(stored.dtype) if pd.api.types.is_integer_dtype(stored) and integral else numbers


def _check_labels(labels: pd.Series, classes: tuple[str, ...], target: str) -> None:
    text = labels_as_text(labels)
    unknown = text.notna() & ~text.isin(classes)
    if unknown.any():
        values = pd.unique(text[unknown])
        raise DataError(f"Column '{target}' holds {_quoted(values)}, not a class of this project "
                        f"({', '.join(classes)}); use one of the classes, or leave it empty for unlabeled rows.")


def _new_keys(existing: pd.Index, rows: pd.DataFrame, id_column: str | None) -> pd.Index:
    """Row keys for the batch: its IDs (refused when missing, repeated or already the project's), else positions."""
    if not id_column:
        numbers = pd.to_numeric(pd.Series(existing, dtype=object), errors="coerce")
        start = int(numbers.max()) + 1 if numbers.notna().any() else len(existing)
        return pd.Index([str(start + i) for i in range(len(rows))], dtype=object, name="row")
    if rows[id_column].isna().any():
        first = int(np.flatnonzero(rows[id_column].isna().to_numpy())[0]) + 1
        raise DataError(f"The ID column '{id_column}' is empty in row {first} of the batch; every new row needs "
                        "its own ID.")
    keys = row_keys(rows, id_column)
    repeated = keys[keys.duplicated()].unique()
    if len(repeated):
        raise DataError(f"The batch repeats ID(s) {_quoted(repeated)} in '{id_column}'; give every row its own ID.")
    taken = keys[existing.get_indexer(keys) >= 0]  # the index's hash table: isin on Arrow strings took 3 s at 50k
    if len(taken):
        raise DataError(f"{len(taken)} row(s) of the batch have IDs the project already has in '{id_column}' "
                        f"({_quoted(taken)}); a batch adds new rows only: remove those rows or give them new IDs.")
    return keys


def appended(dataset: Dataset, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The project's frame with the batch after it, and the split: old rows unchanged, new rows in the pool."""
    frame = pd.concat([dataset.frame, rows])
    split = pd.concat([dataset.split, pd.Series("train", index=rows.index, dtype=object)]).rename("split")
    return frame, split


# --------------------------------------------------------------------------- monitoring
def batch_numbers(index: pd.Index, batch_of: pd.Series) -> pd.Series:
    """The batch number of each row key in ``index``; rows in no batch are the original data (0)."""
    numbers = batch_of.reindex(index)
    return numbers.fillna(INITIAL).astype(int)


def override_rates(decisions: pd.DataFrame, batch_of: pd.Series, numbers: Sequence[int]) -> pd.DataFrame:
    """Per batch: reviewed rows, rows whose latest decision changed the model's prediction, and their share.

    Parameters
    ----------
    decisions : frame of :meth:`Store.decisions` (``id``, ``row_key``, ``action``, ``new_label``,
        ``predicted_label``)
    batch_of : row key → batch number, for rows added in batches (others are batch 0)
    numbers : the batches to report, in order

    Returns
    -------
    pd.DataFrame
        Indexed by ``batch``: ``reviewed``, ``overridden`` and ``override_rate`` (NaN with no review).
        A decision that carries the prediction its author saw counts as an override when its label
        differs from it; one without (a script's label) counts by its recorded action.
    """
    index = pd.Index(list(numbers), name="batch")
    if decisions.empty:
        counts = pd.DataFrame({"reviewed": 0, "overridden": 0}, index=index)
    else:
        latest = decisions.sort_values("id").groupby("row_key", sort=False).last()
        predicted = latest["predicted_label"]
        changed = np.where(predicted.notna(), latest["new_label"] != predicted, latest["action"] == "override")
        per_row = pd.DataFrame({"batch": batch_numbers(latest.index, batch_of).to_numpy(),
                                "overridden": changed.astype(int)})
        counts = per_row.groupby("batch").agg(reviewed=("overridden", "size"), overridden=("overridden", "sum"))
        counts = counts.reindex(index, fill_value=0)
    counts["override_rate"] = counts["overridden"] / counts["reviewed"].where(counts["reviewed"] > 0)
    return counts


def monitoring_frame(batches: Sequence[Batch], batch_of: pd.Series, pool: pd.DataFrame, decisions: pd.DataFrame,
                     classes: Sequence[str]) -> pd.DataFrame:
    """One row per batch (0 = original data): size, the current model's answers on it, and the override rate.

    Parameters
    ----------
    batches : the project's batches (:meth:`Store.batches`)
    batch_of : row key → batch number (:meth:`Store.batch_rows`)
    pool : the training pool scored by the current model (``predicted``, ``confidence``), indexed by row key
    decisions : the project's decisions (:meth:`Store.decisions`)
    classes : the project's classes, for the share columns

    Returns
    -------
    pd.DataFrame
        Indexed by ``batch``: ``name``, ``source``, ``rows`` (in the pool), ``mean_confidence``,
        ``share(<class>)`` per class, ``reviewed``, ``overridden``, ``override_rate``, ``drifted`` (count
        of drifted features; NaN for the original data).
    """
    numbers = [INITIAL, *[b.number for b in batches]]
    of_row = batch_numbers(pool.index, batch_of).to_numpy()
    groups = pool.assign(batch=of_row).groupby("batch")
    frame = pd.DataFrame(index=pd.Index(numbers, name="batch"))
    frame["name"] = ["original data", *[f"batch {b.number}" for b in batches]]
    frame["source"] = ["project file", *[b.source for b in batches]]
    frame["rows"] = groups.size().reindex(frame.index, fill_value=0)
    frame["mean_confidence"] = groups["confidence"].mean().reindex(frame.index)
    shares = pd.crosstab(pd.Series(of_row, index=pool.index, name="batch"), pool["predicted"].astype(str),
                         normalize="index")
    for name in classes:
        frame[f"share({name})"] = shares[name].reindex(frame.index) if name in shares else 0.0
    frame = frame.join(override_rates(decisions, batch_of, numbers))
    frame["drifted"] = [np.nan, *[len(b.drifted) for b in batches]]
    return frame


def drift_table(batches: Sequence[Batch]) -> pd.DataFrame:
    """Tidy drift as stored with each batch: ``batch``, ``feature``, ``psi``, ``p_value``, ``drifted``."""
    records = [{"batch": b.number, "feature": feature, "psi": values.get("psi"), "p_value": values.get("p_value"),
                "drifted": bool(values.get("drifted"))}
               for b in batches for feature, values in ((b.drift or {}).get("features") or {}).items()]
    frame = pd.DataFrame.from_records(records, columns=["batch", "feature", "psi", "p_value", "drifted"])
    return frame.astype({"psi": float, "p_value": float})


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def drift_sentence(batch: Batch) -> str:
    """The drifted features in words: "income and age drifted in batch 3 (PSI 0.41, 0.27)."."""
    features = (batch.drift or {}).get("features") or {}
    if not features:
        return f"Batch {batch.number} has no drift figures."
    drifted = batch.drifted
    if drifted:
        values = ", ".join(f"{features[c]['psi']:.2f}" for c in drifted)
        return f"{_names(drifted)} drifted in batch {batch.number} (PSI {values})."
    psis = {c: v["psi"] for c, v in features.items() if v.get("psi") is not None}
    if not psis:
        return f"No feature drifted in batch {batch.number}."
    top = max(psis, key=psis.get)
    return f"No feature drifted in batch {batch.number} (largest PSI {psis[top]:.2f}, {top})."


# --------------------------------------------------------------------------- figures
def psi_heatmap(drift: pd.DataFrame, *, threshold: float) -> go.Figure:
    """PSI per feature (rows) and batch (columns); drifted cells marked, p-values in the hover."""
    psi = drift.pivot(index="feature", columns="batch", values="psi")
    p = drift.pivot(index="feature", columns="batch", values="p_value").reindex_like(psi)
    flag = drift.pivot(index="feature", columns="batch", values="drifted").reindex_like(psi).fillna(False)
    order = psi.max(axis=1).sort_values(ascending=True).index  # largest PSI at the top
    psi, p, flag = psi.loc[order], p.loc[order], flag.loc[order]
    text = [[("⚠ " if flag.iloc[i, j] else "") + ("" if pd.isna(psi.iloc[i, j]) else f"{psi.iloc[i, j]:.2f}")
             for j in range(psi.shape[1])] for i in range(psi.shape[0])]
    hover = [[f"PSI {psi.iloc[i, j]:.3f} · p = {p.iloc[i, j]:.2g}" for j in range(psi.shape[1])]
             for i in range(psi.shape[0])]
    fig = go.Figure(go.Heatmap(
        z=psi.to_numpy(dtype=float), x=[f"batch {b}" for b in psi.columns], y=[plotly_text(f) for f in psi.index],
        text=text, texttemplate="%{text}", customdata=hover, hovertemplate="%{y}, %{x}: %{customdata}<extra></extra>",
        colorscale="OrRd", zmin=0, zmax=max(0.5, float(np.nanmax(psi.to_numpy(dtype=float), initial=0))),
        colorbar=dict(title="PSI")))
    fig.update_layout(title=f"PSI per feature and batch (⚠ drifted: significant and PSI ≥ {threshold:g})",
                      **{**_LAYOUT, "height": 120 + 28 * len(psi)})
    return fig


def batch_lines(frame: pd.DataFrame, classes: Sequence[str]) -> go.Figure:
    """Per batch: the current model's predicted-class shares, its mean confidence and the override rate."""
    x = frame["name"].map(plotly_text).tolist()
    fig = go.Figure()
    for name in classes:
        fig.add_trace(go.Scatter(x=x, y=frame[f"share({name})"], mode="lines+markers",
                                 name=f"predicted {plotly_text(name)}"))
    fig.add_trace(go.Scatter(x=x, y=frame["mean_confidence"], mode="lines+markers", name="mean confidence",
                             line=dict(dash="dash", color="#555")))
    fig.add_trace(go.Scatter(x=x, y=frame["override_rate"], mode="lines+markers", name="override rate",
                             line=dict(dash="dot", color="crimson")))
    fig.update_layout(title="The current model's answers and people's overrides per batch",
                      yaxis=dict(range=[0, 1], tickformat=".0%"), **_LAYOUT)
    return fig
