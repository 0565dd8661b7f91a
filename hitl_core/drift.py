"""Life after deployment: has a new batch of rows drifted from the project's training pool?

Per feature, two numbers that answer different questions:

* **PSI** (population stability index), *how much* the distribution moved:
  ``sum((b - r) * ln(b / r))`` over bins, with ``r``/``b`` the pool's/batch's share of rows in a bin
  (computed as ``rel_entr(b, r) + rel_entr(r, b)`` with :func:`scipy.special.rel_entr`, the same sum).
  Numeric features are binned on the pool's deciles (``bins=10`` quantile edges, deduplicated when
  values tie, open ends ``(-inf, q1]`` … ``(q9, inf)``); categorical features have one bin per
  category seen in the pool plus one ``<unseen>`` bin for batch categories the pool never had. Missing
  values are their own ``<missing>`` bin for both kinds. A bin empty on one side counts as a share of
  ``eps`` = :data:`EPSILON` (1e-4) instead of 0, so PSI stays finite; a bin empty on both sides adds 0.
  Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 large shift.
* **a two-sample test**, *whether* the move could be chance: Kolmogorov–Smirnov
  (:func:`scipy.stats.ks_2samp`, scipy's defaults) on the non-missing values of a numeric feature;
  chi-square (:func:`scipy.stats.chi2_contingency`, scipy's defaults, so Yates' correction on a 2 × 2
  table) on the pool-vs-batch counts of a categorical feature's bins (bins empty on both sides left
  out). A side with no non-missing values gives no KS test (``p_value`` NaN).

**Drift rule**: a feature has ``drifted`` when ``p_value < alpha`` (default 0.01) **and**
``psi >= psi_threshold`` (default 0.1). The test alone flags trivial shifts on large batches; PSI
alone flags noise on small ones; both together mean "real and big enough to matter". A NaN p-value
never counts as drifted. Missing values enter PSI but not KS, so a numeric column that merely goes
missing more often shows a high PSI and its ``missing_batch`` share, and may not be flagged.

Predictions of the current model on both tables give :func:`prediction_shift`: predicted-class
shares and mean confidence, pool against batch. Everything here is pure: frames in, frames,
dicts and a frozen :class:`DriftReport` out; the CLI (``python -m hitl_core drift``) does the I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import rel_entr
from scipy.stats import chi2_contingency, ks_2samp

from hitl_core.data import DataError, Schema, labels_as_text

DEFAULT_ALPHA = 0.01
DEFAULT_PSI_THRESHOLD = 0.1
DEFAULT_BINS = 10
EPSILON = 1e-4  # share given to a bin empty on one side, so ln(b / r) stays finite
MISSING_BIN = "<missing>"
UNSEEN_BIN = "<unseen>"
FEATURE_COLUMNS = ("kind", "test", "psi", "statistic", "p_value", "drifted", "missing_reference", "missing_batch",
                   "unseen_batch")


def psi(reference_counts: np.ndarray, batch_counts: np.ndarray, *, eps: float = EPSILON) -> float:
    """Population stability index of two count vectors over the same bins; 0 = same shares.

    Parameters
    ----------
    reference_counts, batch_counts : array of shape (n_bins,)
        Rows per bin in the reference (training pool) and the batch.
    eps : float
        Share used for a bin empty on one side (a bin empty on both sides adds 0).

    Returns
    -------
    float
        ``sum((b - r) * ln(b / r))`` over bins, ``r``/``b`` the shares; NaN when a side has no rows.
    """
    r_counts, b_counts = np.asarray(reference_counts, dtype=float), np.asarray(batch_counts, dtype=float)
    if r_counts.sum() == 0 or b_counts.sum() == 0:
        return float("nan")
    r = np.where(r_counts == 0, eps, r_counts / r_counts.sum())
    b = np.where(b_counts == 0, eps, b_counts / b_counts.sum())
    both_empty = (r_counts == 0) & (b_counts == 0)
    return float(np.sum(np.where(both_empty, 0.0, rel_entr(b, r) + rel_entr(r, b))))


def numeric_edges(reference: pd.Series, *, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner bin edges: the pool's quantiles at 1/bins … (bins-1)/bins, ties merged (ends stay open)."""
    values = reference.dropna().to_numpy(dtype=float)
    if len(values) == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_counts(reference: pd.Series, batch: pd.Series, kind: str, *, bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """Rows per PSI bin on each side: the table PSI and the chi-square test are computed on.

    Parameters
    ----------
    reference, batch : pd.Series
        One feature's values in the pool and in the batch (numeric already converted to numbers).
    kind : {"numeric", "categorical"}
    bins : int
        Quantile bins for a numeric feature (fewer when the pool's quantiles tie).

    Returns
    -------
    pd.DataFrame
        One row per bin, in order, with columns ``bin`` (label: ``"(12.5, 20]"``, a category,
        ``"<unseen>"`` or ``"<missing>"``), ``reference`` and ``batch`` (counts). Numeric: the
        quantile bins then ``<missing>``; categorical: the pool's categories (most frequent first),
        ``<unseen>``, ``<missing>``.
    """
    if kind == "numeric":
        edges = numeric_edges(reference, bins=bins)
        bounds = np.concatenate([[-np.inf], edges, [np.inf]])
        labels = [f"({lo:.4g}, {hi:.4g}]" for lo, hi in zip(bounds[:-1], bounds[1:])]
        counts = []
        for side in (reference, batch):
            values = side.dropna().to_numpy(dtype=float)
            # right-closed bins: x == edge falls in the bin below it, like pd.cut
            counts.append(np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1))
        return pd.DataFrame({"bin": labels + [MISSING_BIN],
                             "reference": np.append(counts[0], reference.isna().sum()),
                             "batch": np.append(counts[1], batch.isna().sum())})
    ref_text, batch_text = labels_as_text(reference), labels_as_text(batch)
    ref_counts = ref_text.value_counts(dropna=True)  # most frequent first
    batch_counts = batch_text.value_counts(dropna=True).reindex(ref_counts.index, fill_value=0)
    unseen = int(batch_text.notna().sum() - batch_counts.sum())
    return pd.DataFrame({"bin": [str(c) for c in ref_counts.index] + [UNSEEN_BIN, MISSING_BIN],
                         "reference": np.concatenate([ref_counts.to_numpy(), [0, ref_text.isna().sum()]]),
                         "batch": np.concatenate([batch_counts.to_numpy(), [unseen, batch_text.isna().sum()]])})


def chi_square(counts: pd.DataFrame) -> tuple[float, float]:
    """Chi-square statistic and p-value of scipy's ``chi2_contingency`` on the 2 × bins table of counts.

    Bins empty on both sides are left out (their expected count is 0); a single remaining bin gives
    statistic 0, p-value 1 (scipy's answer for a table with no degrees of freedom).
    """
    table = counts[["reference", "batch"]].to_numpy(dtype=float).T
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0 or (table.sum(axis=1) == 0).any():
        return float("nan"), float("nan")
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _as_numbers(values: pd.Series, side: str) -> pd.Series:
    """A numeric feature as floats; text that is no number is refused, naming the column and a value."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(f"Column '{values.name}' of the {side} should hold numbers, as in the project's data; "
                        f"found {example!r}.")
    return numbers.astype(float)


def _check_inputs(reference: pd.DataFrame, batch: pd.DataFrame, schema: Schema, alpha: float,
                  psi_threshold: float, bins: int) -> None:
    for side, frame in (("batch", batch), ("reference", reference)):
        missing = [c for c in schema.features if c not in frame.columns]
        if missing:
            raise DataError(f"The {side} lacks the model's feature column(s) {missing[:10]}; use a file with the "
                            "same columns as the project's data.")
        if len(frame) == 0:
            raise DataError(f"The {side} has no rows; drift needs rows on both sides to compare.")
    if not 0 < alpha <= 1:
        raise DataError(f"alpha is a significance level; give a value above 0 and at most 1 (got {alpha}).")
    if psi_threshold < 0:
        raise DataError(f"The PSI threshold must be 0 or more (got {psi_threshold}).")
    if bins < 2:
        raise DataError(f"Numeric features need at least 2 bins (got {bins}).")


def feature_drift(reference: pd.DataFrame, batch: pd.DataFrame, schema: Schema, *, alpha: float = DEFAULT_ALPHA,
                  psi_threshold: float = DEFAULT_PSI_THRESHOLD, bins: int = DEFAULT_BINS,
                  eps: float = EPSILON) -> pd.DataFrame:
    """PSI and a two-sample test for every feature of ``schema``, batch against reference.

    Parameters
    ----------
    reference : pd.DataFrame
        The training pool's rows (at least the schema's feature columns).
    batch : pd.DataFrame
        New rows with the same feature columns; other columns are ignored.
    schema : Schema
        Which features are numeric and which categorical.
    alpha : float
        Significance level: ``drifted`` needs ``p_value < alpha``.
    psi_threshold : float
        ``drifted`` also needs ``psi >= psi_threshold``.
    bins : int
        Quantile bins for numeric features.
    eps : float
        Share given to a bin empty on one side (see :func:`psi`).

    Returns
    -------
    pd.DataFrame
        Indexed by feature (schema order), columns ``kind`` ("numeric"/"categorical"), ``test``
        ("ks"/"chi2"), ``psi``, ``statistic``, ``p_value``, ``drifted`` (bool), ``missing_reference``
        and ``missing_batch`` (shares of missing values), ``unseen_batch`` (share of batch rows in a
        category the pool never had; NaN for numeric features).

    Raises
    ------
    DataError
        A side lacks feature columns or has no rows, a numeric feature holds text, or an option is out of range.
    """
    _check_inputs(reference, batch, schema, alpha, psi_threshold, bins)
    kinds = {**{c: "numeric" for c in schema.numeric}, **{c: "categorical" for c in schema.categorical}}
    records = []
    for column in schema.features:
        kind = kinds[column]
        ref, new = reference[column], batch[column]
        if kind == "numeric":
            ref, new = _as_numbers(ref, "reference"), _as_numbers(new, "batch")
        counts = binned_counts(ref, new, kind, bins=bins)
        if kind == "numeric":
            ref_values, new_values = ref.dropna().to_numpy(), new.dropna().to_numpy()
            if len(ref_values) and len(new_values):
                result = ks_2samp(ref_values, new_values)
                statistic, p_value = float(result.statistic), float(result.pvalue)
            else:
                statistic, p_value = float("nan"), float("nan")
            unseen = float("nan")
        else:
            statistic, p_value = chi_square(counts)
            unseen = float(counts["batch"].iloc[-2]) / len(new)  # bins end with <unseen>, <missing>
        value = psi(counts["reference"].to_numpy(), counts["batch"].to_numpy(), eps=eps)
        records.append({
            "feature": column, "kind": kind, "test": "ks" if kind == "numeric" else "chi2", "psi": value,
            "statistic": statistic, "p_value": p_value,
            "drifted": bool(p_value < alpha and value >= psi_threshold),  # NaN compares False: never drifted
            # from the <missing> bin (last), so blank text counts as missing here as it does in PSI
            "missing_reference": float(counts["reference"].iloc[-1]) / len(ref),
            "missing_batch": float(counts["batch"].iloc[-1]) / len(new),
            "unseen_batch": unseen,
        })
    return pd.DataFrame.from_records(records, index="feature", columns=["feature", *FEATURE_COLUMNS])


def _as_prediction_frame(predictions) -> pd.DataFrame:
    frame = predictions.to_frame() if hasattr(predictions, "to_frame") and not isinstance(
        predictions, (pd.DataFrame, pd.Series)) else predictions
    if not isinstance(frame, pd.DataFrame) or not {"predicted", "confidence"} <= set(frame.columns):
        raise DataError("Predictions need the columns 'predicted' and 'confidence' (Predictions.to_frame()).")
    if len(frame) == 0:
        raise DataError("Predictions have no rows; a prediction shift needs rows on both sides.")
    return frame


def prediction_shift(reference_preds, batch_preds) -> dict:
    """How the current model's answers moved: predicted-class shares and mean confidence, pool vs batch.

    Parameters
    ----------
    reference_preds, batch_preds : pd.DataFrame or Predictions
        The model's predictions on the pool and on the batch: ``Predictions.to_frame()`` (columns
        ``predicted``, ``confidence`` and optionally ``p(<class>)``), or the ``Predictions`` itself.

    Returns
    -------
    dict
        JSON-ready: ``n_reference``, ``n_batch``; ``classes``: ``{class: {"reference": share,
        "batch": share, "change": batch - reference}}`` for every class (from the ``p(<class>)``
        columns, else every class predicted on either side); ``largest_change``: the class whose
        share moved most and by how much; ``psi`` of the predicted-class shares (same ``eps`` as
        the features); ``mean_confidence``: ``{"reference", "batch", "change"}``.
    """
    ref, new = _as_prediction_frame(reference_preds), _as_prediction_frame(batch_preds)
    ref_counts, new_counts = ref["predicted"].astype(str).value_counts(), new["predicted"].astype(str).value_counts()
    classes = [c[2:-1] for c in ref.columns if c.startswith("p(") and c.endswith(")")]
    classes += sorted(set(ref_counts.index).union(new_counts.index) - set(classes))
    ref_counts, new_counts = ref_counts.reindex(classes, fill_value=0), new_counts.reindex(classes, fill_value=0)
    ref_share, new_share = ref_counts / len(ref), new_counts / len(new)
    change = new_share - ref_share
    biggest = str(change.abs().idxmax())
    ref_conf, new_conf = float(ref["confidence"].mean()), float(new["confidence"].mean())
    return {
        "n_reference": len(ref), "n_batch": len(new),
        "classes": {c: {"reference": float(ref_share[c]), "batch": float(new_share[c]), "change": float(change[c])}
                    for c in classes},
        "largest_change": {"class": biggest, "change": float(change[biggest])},
        "psi": psi(ref_counts.to_numpy(), new_counts.to_numpy()),
        "mean_confidence": {"reference": ref_conf, "batch": new_conf, "change": new_conf - ref_conf},
    }


def _json_number(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass(frozen=True)
class DriftReport:
    """Feature drift of one batch against the training pool, and the shift in the model's predictions."""

    features: pd.DataFrame  # feature_drift's frame
    prediction_shift: dict | None  # prediction_shift's dict; None when there was no model to ask
    alpha: float = DEFAULT_ALPHA
    psi_threshold: float = DEFAULT_PSI_THRESHOLD

    @property
    def drifted(self) -> list[str]:
        """Drifted features, largest PSI first."""
        flagged = self.features[self.features["drifted"]]
        return [str(c) for c in flagged.sort_values("psi", ascending=False, kind="stable").index]

    def to_json(self) -> dict:
        """JSON-ready dict: ``{"features": {col: {"psi", "p_value", "drifted", "test", "statistic", "kind",
        "missing_reference", "missing_batch", "unseen_batch"}}, "drifted": [...], "prediction_shift": {...}}``;
        ``null`` where a number is undefined."""
        features = {}
        for column, row in self.features.iterrows():
            features[str(column)] = {
                "psi": _json_number(row["psi"]), "p_value": _json_number(row["p_value"]),
                "drifted": bool(row["drifted"]), "test": row["test"], "statistic": _json_number(row["statistic"]),
                "kind": row["kind"], "missing_reference": _json_number(row["missing_reference"]),
                "missing_batch": _json_number(row["missing_batch"]),
                "unseen_batch": _json_number(row["unseen_batch"]),
            }
        return {"features": features, "drifted": self.drifted, "prediction_shift": self.prediction_shift}

    def sentence(self) -> str:
        """The drifted features in plain words: "income and age drifted (PSI 0.42, 0.18); 11 other features did not."."""
        drifted = self.drifted
        others = len(self.features) - len(drifted)
        if not drifted:
            if self.features.empty:
                return "No features to compare."
            top = self.features["psi"].idxmax() if self.features["psi"].notna().any() else None
            largest = "" if top is None else f"; largest PSI {self.features.loc[top, 'psi']:.2f} ({top})"
            return f"No feature drifted ({len(self.features)} compared{largest})."
        values = ", ".join(f"{self.features.loc[c, 'psi']:.2f}" for c in drifted)
        text = f"{_names(drifted)} drifted (PSI {values})"
        if others:
            text += f"; {others} other feature{'s' if others != 1 else ''} did not"
        return text + "."


def drift_report(reference: pd.DataFrame, batch: pd.DataFrame, schema: Schema, *, reference_preds=None,
                 batch_preds=None, alpha: float = DEFAULT_ALPHA, psi_threshold: float = DEFAULT_PSI_THRESHOLD,
                 bins: int = DEFAULT_BINS) -> DriftReport:
    """:func:`feature_drift` and, when both predictions are given, :func:`prediction_shift`, in one report."""
    features = feature_drift(reference, batch, schema, alpha=alpha, psi_threshold=psi_threshold, bins=bins)
    shift = None if reference_preds is None or batch_preds is None else prediction_shift(reference_preds,
                                                                                          batch_preds)
    return DriftReport(features=features, prediction_shift=shift, alpha=alpha, psi_threshold=psi_threshold)
