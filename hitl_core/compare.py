"""Two model versions side by side: what a rollback or promotion would change, before anyone makes it.

Pure functions on stored :class:`~hitl_core.records.ModelVersion` records (metrics, fairness
summaries) and on fitted models (the rows whose prediction differs). Everything compares a
*reference* version ``a`` with a *candidate* ``b``: every ``change`` is ``b - a``, so with ``a`` the
current version it reads "what making ``b`` current would do". Costs come from each version's stored
validation confusion matrix priced by the project's cost model (:mod:`hitl_core.costs`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from hitl_core.charts import METRIC_LABELS
from hitl_core.costs import CostModel, ExpectedCost, format_amount, format_number, version_costs
from hitl_core.data import Dataset, Schema
from hitl_core.evaluate import LOWER_IS_BETTER, METRIC_NAMES
from hitl_core.fairness import DISPARITIES, find_summary
from hitl_core.models import FittedModel, Predictions, predict_with_confidence
from hitl_core.records import ModelVersion

Part = Literal["train", "validation", "test"]
PARTS: dict[str, str] = {"train": "review pool", "validation": "validation", "test": "held-out test"}
SPLITS: dict[str, str] = {"validation": "validation", "test": "held-out test"}
EQUAL = 0.0005  # a change that shows as ±0.000 (three decimals) is no change: never call it better
CHANGE_ACTIONS = ("rollback", "promote")  # events written by hitl_core.actions.set_current_version


def version_name(version: ModelVersion | int) -> str:
    """``"v3"``: how every table and chart names a version."""
    return f"v{version if isinstance(version, int) else version.version}"


def _check_pair(a: ModelVersion, b: ModelVersion) -> tuple[str, str]:
    if a.version == b.version:
        raise ValueError(f"Pick two different versions to compare (both are {version_name(a)}).")
    return version_name(a), version_name(b)


def _value(x: object) -> float:
    return np.nan if x is None else float(x)


def _better(change: float, lower_is_better: bool, a: str, b: str) -> str:
    """Which version is better on one number: ``b``, ``a``, ``"same"``, or ``""`` when one is missing."""
    if np.isnan(change):
        return ""
    if abs(change) < EQUAL:
        return "same"
    return b if (change < 0) == lower_is_better else a


# --------------------------------------------------------------------------- versions
def default_pair(versions: Sequence[ModelVersion], current: int) -> tuple[int, int] | None:
    """The pair the page opens on: (current, previous); ``None`` with fewer than two versions.

    Previous = the newest older version that was accepted once (a rollback target), else the newest
    older one, else (the current version is the oldest, after a rollback) the newest other one.
    """
    others = [v for v in versions if v.version != current]
    if not others:
        return None
    older = [v for v in others if v.version < current]
    accepted = [v for v in older if v.status != "superseded"]
    previous = (accepted or older or others)[-1]
    return current, previous.version


def version_table(versions: Sequence[ModelVersion], events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per version, newest first: status, why, trigger, decisions and validation metrics.

    ``why`` is the stored reason (a superseded version says what made it stale) and, for a version
    made current by a rollback or promotion, who did it and why (the latest such event of
    ``events``, the frame of :meth:`hitl_core.store.Store.events`).
    """
    moved = {}
    if events is not None and not events.empty:
        changes = events[events["action"].isin(CHANGE_ACTIONS)].sort_values("id")
        for action, target, actor, note in changes[["action", "object", "actor", "note"]].itertuples(index=False):
            verb = "rolled back to" if action == "rollback" else "promoted"
            moved[str(target)] = f"{verb} by {actor}: {note}"
    rows = []
    for v in reversed(list(versions)):
        why = [text for text in (v.status_reason, moved.get(version_name(v), "")) if text]
        rows.append({"version": v.version, "status": v.status, "created": v.created_at, "model": v.model_kind,
                     "trigger": v.trigger, "decisions": v.n_decisions, "human labels": v.n_human_labels,
                     "training rows": v.n_train, **{m: _value(v.validation.get(m)) for m in
                                                     ("accuracy", "balanced_accuracy", "f1_macro")},
                     "why": "; ".join(why)})
    return pd.DataFrame(rows, columns=["version", "status", "created", "model", "trigger", "decisions",
                                       "human labels", "training rows", "accuracy", "balanced_accuracy",
                                       "f1_macro", "why"])


# --------------------------------------------------------------------------- metrics
def metrics_table(a: ModelVersion, b: ModelVersion) -> pd.DataFrame:
    """Every metric of both versions on validation and on the held-out test set, with the change ``b - a``.

    Columns: ``split``, ``metric`` (key of ``METRIC_NAMES``), ``name`` (readable), ``v<a>``,
    ``v<b>``, ``change``, ``lower_is_better``, ``better`` (the better version's name, ``"same"``, or
    ``""`` when a value is missing) and ``majority baseline`` (of ``b``: the number to beat).
    Metrics neither version has (Brier on a multiclass target) are left out.
    """
    name_a, name_b = _check_pair(a, b)
    rows = []
    for split in SPLITS:
        for metric in METRIC_NAMES:
            va, vb = _value(getattr(a, split).get(metric)), _value(getattr(b, split).get(metric))
            if np.isnan(va) and np.isnan(vb):
                continue
            change = vb - va
            lower = metric in LOWER_IS_BETTER
            baseline = b.baselines.get("majority", {}).get(split, {}).get(metric)
            rows.append({"split": split, "metric": metric, "name": METRIC_LABELS.get(metric, metric), name_a: va,
                         name_b: vb, "change": change, "lower_is_better": lower,
                         "better": _better(change, lower, name_a, name_b), "majority baseline": _value(baseline)})
    return pd.DataFrame(rows, columns=["split", "metric", "name", name_a, name_b, "change", "lower_is_better",
                                       "better", "majority baseline"])


def metrics_figure(a: ModelVersion, b: ModelVersion, split: str = "validation") -> go.Figure:
    """Grouped bars, metric by metric: both versions beside the majority baseline, the axis from 0.

    Holds no user text (version numbers and metric names only), so nothing needs escaping.
    """
    table = metrics_table(a, b)
    table = table[table["split"] == split]
    name_a, name_b = version_name(a), version_name(b)
    names = [f"{n} ↓" if lower else n for n, lower in zip(table["name"], table["lower_is_better"])]
    fig = go.Figure()
    for column, colour in ((name_a, "#9bb7e0"), (name_b, "#2f6fde"), ("majority baseline", "#cccccc")):
        values = table[column].to_numpy(dtype=float)
        fig.add_trace(go.Bar(x=names, y=values, name=column, marker_color=colour,
                             text=[f"{x:.3f}" if np.isfinite(x) else "" for x in values], textposition="outside",
                             hovertemplate="%{x}: %{y:.4f}<extra>" + column + "</extra>"))
    top = float(np.nanmax(table[[name_a, name_b, "majority baseline"]].to_numpy(dtype=float), initial=1.0))  # ≥ 1
    fig.update_layout(title=f"{name_a} and {name_b} on the {SPLITS[split]} split (↓: lower is better)",
                      barmode="group", yaxis=dict(range=[0, top * 1.12], rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.15), margin=dict(l=10, r=10, t=40, b=10),
                      template="plotly_white", height=360)
    return fig


# --------------------------------------------------------------------------- fairness
def fairness_table(a: ModelVersion, b: ModelVersion, split: str = "validation", *,
                   schema: Schema | None = None) -> pd.DataFrame:
    """The stored disparities of both versions, per attribute set and positive class, with the change ``b - a``.

    Columns: ``attributes``, ``positive class``, ``disparity`` (key of ``DISPARITIES``), ``name``,
    ``v<a>``, ``v<b>``, ``change`` and ``fairer`` (differences: lower is fairer; ratios: higher
    is fairer; ``""`` when a version has no number, e.g. too few groups large enough to judge).
    Attribute sets only one version stored (fairness settings changed in between) keep a blank
    for the other.
    """
    name_a, name_b = _check_pair(a, b)
    keys: dict[tuple[str, str], None] = {}
    for stored in (a.fairness, b.fairness):
        for item in stored or []:
            if item.get("split") == split:
                keys[(str(item["sensitive"]), str(item["positive_class"]))] = None
    binary = schema is not None and len(schema.classes) == 2 and schema.favourable is not None
    if binary:  # one stored class answers for the other: show the favourable outcome only
        keys = {(sensitive, schema.favourable): None for sensitive, _ in keys}
    classes = schema.classes if binary else None
    rows = []
    for sensitive, positive in keys:
        columns = sensitive.split(" × ")
        ra, rb = (find_summary(v.fairness or [], columns, positive, split, classes=classes) for v in (a, b))
        for disparity, label in DISPARITIES.items():
            va = _value(getattr(ra, disparity)) if ra is not None else np.nan
            vb = _value(getattr(rb, disparity)) if rb is not None else np.nan
            change = vb - va
            rows.append({"attributes": sensitive, "positive class": positive, "disparity": disparity, "name": label,
                         name_a: va, name_b: vb, "change": change,
                         "fairer": _better(change, disparity.endswith("difference"), name_a, name_b)})
    return pd.DataFrame(rows, columns=["attributes", "positive class", "disparity", "name", name_a, name_b, "change",
                                       "fairer"])


# --------------------------------------------------------------------------- costs
def costs_table(a: ModelVersion, b: ModelVersion, costs: CostModel, *, majority_a: str, majority_b: str,
                seed: int = 0) -> pd.DataFrame:
    """Expected cost per 100 decisions on validation of both versions and of their baselines, with the change ``b - a``.

    Columns: ``measure``, ``v<a>``, ``v<b>``, ``change``, ``better`` (lower cost is better; ``"same"``
    when it shows as no change) and ``v<a> interval`` / ``v<b> interval`` (95 % bootstrap, text).
    ``majority_a`` / ``majority_b``: the class each version's majority baseline decides.
    """
    name_a, name_b = _check_pair(a, b)
    found = {name_a: version_costs(a, costs, majority=majority_a, seed=seed),
             name_b: version_costs(b, costs, majority=majority_b, seed=seed)}
    rows = []
    for key, measure in (("model", "expected cost per 100 decisions"),
                         ("majority", "majority baseline, per 100 decisions"),
                         ("random", "random baseline, per 100 decisions")):
        va, vb = (found[n][key].per(100) for n in (name_a, name_b))
        rows.append({"measure": measure, name_a: va, name_b: vb, "change": vb - va,
                     "better": _better(vb - va, True, name_a, name_b),
                     **{f"{n} interval": _interval(found[n][key]) for n in (name_a, name_b)}})
    ea, eb = found[name_a]["model"].costly_errors, found[name_b]["model"].costly_errors
    rows.append({"measure": "costly errors on validation", name_a: ea, name_b: eb, "change": eb - ea,
                 "better": _better(eb - ea, True, name_a, name_b), f"{name_a} interval": "", f"{name_b} interval": ""})
    table = pd.DataFrame(rows, columns=["measure", name_a, name_b, "change", "better", f"{name_a} interval",
                                        f"{name_b} interval"])
    table.attrs["sentence"] = _costs_sentence(found[name_a]["model"], found[name_b]["model"], name_a, name_b)
    return table


def _interval(cost: ExpectedCost) -> str:
    return f"{format_number(cost.low * 100)}–{format_number(cost.high * 100)}"


def _costs_sentence(a: ExpectedCost, b: ExpectedCost, name_a: str, name_b: str) -> str:
    """Which version costs less, hedged when the two intervals overlap."""
    said = f"{name_b} costs {b.text()} against {a.text().removesuffix(' per 100 decisions')} for {name_a}"
    if a.high < b.low or b.high < a.low:
        cheaper = name_b if b.per_row < a.per_row else name_a
        return f"{said}: {cheaper} is cheaper (the 95 % intervals do not overlap)."
    return (f"{said}; the 95 % intervals overlap, so there is no clear difference in cost "
            f"({format_amount(abs(b.per(100) - a.per(100)), a.unit)} per 100 decisions apart).")


# --------------------------------------------------------------------------- predictions
@dataclass(frozen=True)
class PredictionChanges:
    """The rows of one split whose predicted class differs between two models, and how many.

    ``rows`` is indexed by row key with ``predicted_a``, ``confidence_a``, ``predicted_b``,
    ``confidence_b`` (top-class probabilities) and, when labels were given, ``label``. With
    labels, ``n_fixed`` counts changed rows ``b`` now gets right (``a`` got them wrong) and
    ``n_broken`` the reverse; both are ``None`` without labels.
    """

    part: str
    n_rows: int
    rows: pd.DataFrame
    n_labelled: int | None = None
    n_fixed: int | None = None
    n_broken: int | None = None

    @property
    def n_changed(self) -> int:
        return len(self.rows)

    @property
    def share(self) -> float:
        """Changed rows as a share of the split's rows (0 for an empty split)."""
        return self.n_changed / self.n_rows if self.n_rows else 0.0


def changes_between(a: Predictions, b: Predictions, *, labels: pd.Series | None = None,
                    part: str = "") -> PredictionChanges:
    """The rows where two sets of predictions (same rows, same classes) pick different classes.

    Parameters
    ----------
    a, b : predictions of the reference and the candidate model on the same rows
    labels : labels as text indexed by row key (missing = unlabeled), e.g. the effective labels
    part : the split the rows come from, carried for the page
    """
    if not a.index.equals(b.index) or tuple(a.classes) != tuple(b.classes):
        raise ValueError("Both predictions must cover the same rows and classes.")
    differs = a.proba.argmax(axis=1) != b.proba.argmax(axis=1)
    frame = pd.DataFrame({"predicted_a": a.labels[differs], "confidence_a": a.confidence[differs],
                          "predicted_b": b.labels[differs], "confidence_b": b.confidence[differs]},
                         index=a.index[differs])
    if labels is None:
        return PredictionChanges(part=part, n_rows=len(a.index), rows=frame)
    frame["label"] = labels.reindex(frame.index).to_numpy(dtype=object)
    known = frame["label"].notna()
    return PredictionChanges(part=part, n_rows=len(a.index), rows=frame, n_labelled=int(known.sum()),
                             n_fixed=int((known & (frame["label"] == frame["predicted_b"])).sum()),
                             n_broken=int((known & (frame["label"] == frame["predicted_a"])).sum()))


def changed_predictions(model_a: FittedModel, model_b: FittedModel, dataset: Dataset, classes: Sequence[str],
                        part: Part = "train", *, labels: pd.Series | None = None,
                        threads: int = 1) -> PredictionChanges:
    """The rows of one split (the review pool by default) that the two models predict differently.

    ``labels`` (indexed by row key, e.g. :func:`hitl_core.loop.effective_labels`) adds each
    changed row's label and the counts of rows fixed and broken by the change.
    """
    if part not in PARTS:
        raise ValueError(f"Unknown split '{part}'; choose one of {', '.join(PARTS)}.")
    X = dataset.features.loc[dataset.rows(part)]
    classes = tuple(classes)
    a = predict_with_confidence(model_a, X, classes, threads=threads)
    b = predict_with_confidence(model_b, X, classes, threads=threads)
    return changes_between(a, b, labels=labels, part=part)
