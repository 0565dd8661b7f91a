"""The human-in-the-loop cycle: effective labels → retrain → evaluate → a new ModelVersion."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hitl_core import consensus
from hitl_core.data import Dataset, DataError, Schema, row_keys
from hitl_core.evaluate import classification_metrics, confusion
from hitl_core.fairness import summaries as fairness_summaries
from hitl_core.models import BASELINE_KINDS, FittedModel, fit, predict_with_confidence
from hitl_core.records import DecisionRequest, ModelVersion, Project
from hitl_core.store import Store


def effective_labels(original: pd.Series, decisions: pd.DataFrame) -> pd.Series:
    """The human label per row (adjudicated, else the consensus of votes, else the latest decision: see
    :func:`hitl_core.consensus.decided_labels`), else the original label; missing means unlabeled.

    Parameters
    ----------
    original : labels as text, indexed by row key (missing = unlabeled)
    decisions : frame with ``id``, ``row_key`` and ``new_label`` (``Store.decisions``)
    """
    labels = original.astype(object).copy()
    if decisions.empty:
        return labels
    latest = consensus.decided_labels(decisions)
    if not labels.index.is_unique:
        latest = latest[latest.index.isin(labels.index)]
        labels.loc[latest.index] = latest.to_numpy(dtype=object)
        return labels
    # look the decided rows up in the row index's hash table: ``latest.index.isin(labels.index)`` on
    # pandas 3's Arrow string index builds one Python scalar per dataset row (0.5 s at 50k rows)
    positions = labels.index.get_indexer(latest.index)
    known = positions >= 0
    labels.iloc[positions[known]] = latest.to_numpy(dtype=object)[known]
    return labels


def n_human_labelled(decisions: pd.DataFrame) -> int:
    """Rows that carry at least one human decision."""
    return int(decisions["row_key"].nunique()) if not decisions.empty else 0


@dataclass(frozen=True)
class Evaluation:
    """Scores of one trained model beside its baselines, on validation and on the held-out test set."""

    validation: dict[str, float | None]
    test: dict[str, float | None]
    baselines: dict[str, dict[str, dict[str, float | None]]]  # kind → "validation"/"test" → metrics
    confusion: dict[str, dict[str, int]]  # validation: true → predicted → count
    fairness: list[dict] = field(default_factory=list)  # validation, per sensitive attribute set (hitl_core.fairness)


def _labelled_mask(dataset: Dataset, labels: pd.Series, part: str) -> np.ndarray | None:
    """One split's labelled rows as a boolean mask, when ``labels`` follows the dataset's rows; else ``None``.

    Same rows, same order as ``labels.loc[dataset.rows(part)].dropna()``, without looking up every
    string key (~30 ms per 30k rows, several times per retrain).
    """
    if not (labels.index.equals(dataset.split.index) and dataset.frame.index.equals(dataset.split.index)):
        return None
    return (dataset.split.to_numpy() == part) & labels.notna().to_numpy()


def _labelled_part(dataset: Dataset, features: pd.DataFrame, labels: pd.Series, part: str
                   ) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels of one split's labelled rows, in dataset order."""
    mask = _labelled_mask(dataset, labels, part)
    if mask is None:
        truth = labels.loc[dataset.rows(part)].dropna()
        return features.loc[truth.index], truth
    return features[mask], labels[mask]


def fit_on_pool(dataset: Dataset, labels: pd.Series, model_kind: str, *, seed: int = 0,
                threads: int = 1) -> FittedModel:
    """Fit on the labelled rows of the training pool only: never on validation or held-out test rows."""
    X_train, train_labels = _labelled_part(dataset, dataset.features, labels, "train")
    return fit(model_kind, dataset.schema, X_train, train_labels, seed=seed, threads=threads)


def score(model: FittedModel, dataset: Dataset, labels: pd.Series, part: str, *, threads: int = 1) -> dict:
    """Metrics of ``model`` on one split's labelled rows."""
    truth = labels.loc[dataset.rows(part)].dropna()
    return _score_rows(model, dataset.features.loc[truth.index], truth, dataset.schema.classes, threads=threads)


def _score_rows(model: FittedModel, X: pd.DataFrame, truth: pd.Series, classes: tuple[str, ...], *,
                threads: int = 1) -> dict:
    """Metrics of ``model`` on rows ``X`` labelled ``truth``, from one thread-pinned prediction pass.

    A model predicts its most probable class, which ``classification_metrics`` derives from the
    probabilities; only the random baseline (all probabilities equal) needs its own draws.
    """
    preds = predict_with_confidence(model, X, classes, threads=threads)
    y_pred = model.estimator.predict(X) if model.kind == "random" else None
    return classification_metrics(truth.to_numpy(), preds.proba, classes, y_pred=y_pred)


def train_and_evaluate(dataset: Dataset, labels: pd.Series, model_kind: str, *, seed: int = 0,
                       threads: int = 1) -> tuple[FittedModel, Evaluation]:
    """Fit on the labelled training pool only; score on validation and the held-out test set.

    The test rows are never seen by the fit and never used to choose anything.
    """
    classes = dataset.schema.classes
    features = dataset.features  # one copy of the feature columns, sliced per split below
    X_train, train_labels = _labelled_part(dataset, features, labels, "train")
    model = fit(model_kind, dataset.schema, X_train, train_labels, seed=seed, threads=threads)
    X, truth = {}, {}
    for part in ("validation", "test"):
        X[part], truth[part] = _labelled_part(dataset, features, labels, part)
    baselines = {}
    for kind in BASELINE_KINDS:
        baseline = fit(kind, dataset.schema, X_train, train_labels, seed=seed)
        baselines[kind] = {part: _score_rows(baseline, X[part], truth[part], classes) for part in truth}
    y_val = truth["validation"].to_numpy()
    val_preds = predict_with_confidence(model, X["validation"], classes, threads=threads)
    matrix = confusion(y_val, val_preds.labels, classes)
    evaluation = Evaluation(
        validation=classification_metrics(y_val, val_preds.proba, classes),
        test=_score_rows(model, X["test"], truth["test"], classes, threads=threads),
        baselines=baselines,
        confusion={str(t): {str(p): int(v) for p, v in row.items()} for t, row in matrix.iterrows()},
        fairness=fairness_summaries(dataset, truth["validation"], val_preds) if dataset.schema.sensitive else [],
    )
    return model, evaluation


@dataclass(frozen=True)
class TrainedVersion:
    """A model trained on one snapshot of the labels, not yet stored: the worker's result."""

    model: FittedModel
    evaluation: Evaluation
    n_human_labels: int
    n_train: int
    n_decisions: int
    last_decision_id: int  # the snapshot: decisions with an id up to this one are in the labels

    def metrics(self) -> dict:
        """The JSON stored with the version."""
        e = self.evaluation
        stored = {"validation": e.validation, "test": e.test, "baselines": e.baselines, "confusion": e.confusion}
        return {**stored, "fairness": e.fairness} if e.fairness else stored


def train_snapshot(store: Store, project: Project, *, dataset: Dataset | None = None,
                   threads: int = 1) -> TrainedVersion:
    """Train on the effective labels as they are now (one read of the decisions) and evaluate."""
    dataset = dataset if dataset is not None else store.load_dataset(project)
    decisions = store.decisions(project.id)
    return _train_on(dataset, decisions, project.model_kind, seed=project.seed, threads=threads)


def train_first(dataset: Dataset, model_kind: str, *, seed: int = 0, threads: int = 1) -> TrainedVersion:
    """Version 1 of a new project: the given labels, no decisions yet."""
    return _train_on(dataset, pd.DataFrame(columns=["id", "row_key", "new_label"]), model_kind, seed=seed,
                     threads=threads)


def _train_on(dataset: Dataset, decisions: pd.DataFrame, model_kind: str, *, seed: int,
              threads: int) -> TrainedVersion:
    labels = effective_labels(dataset.labels, decisions)
    model, evaluation = train_and_evaluate(dataset, labels, model_kind, seed=seed, threads=threads)
    train = _labelled_mask(dataset, labels, "train")
    n_train = int(train.sum()) if train is not None else int(labels.loc[dataset.rows("train")].notna().sum())
    return TrainedVersion(model=model, evaluation=evaluation, n_human_labels=n_human_labelled(decisions),
                          n_train=n_train, n_decisions=len(decisions),
                          last_decision_id=int(decisions["id"].max()) if len(decisions) else 0)


def labels_at(dataset: Dataset, decisions: pd.DataFrame, version: ModelVersion) -> pd.Series:
    """The effective labels a version was trained on: decisions up to its snapshot, else the given labels."""
    return effective_labels(dataset.labels, decisions[decisions["id"] <= version.last_decision_id])


def retrain_due(project: Project, pending: int) -> bool:
    """Whether the project's retrain policy asks for a new model, with ``pending`` decisions not yet in it."""
    if pending <= 0 or project.retrain_policy == "manual":
        return False
    if project.retrain_policy == "every_n":
        return pending >= max(1, project.retrain_every)
    return True


def pool_predictions(model: FittedModel, dataset: Dataset, decisions: pd.DataFrame, *,
                     threads: int = 1) -> pd.DataFrame:
    """Predictions on the training pool (the rows people review) beside the given and effective labels.

    Columns: ``given``, ``label`` (effective), ``predicted``, ``confidence``, ``p(<class>)``…,
    ``disagrees`` (labelled and predicted differently) and ``reviewed`` (a person decided on it).
    """
    return with_labels(score_pool(model, dataset, threads=threads), decisions)


def score_pool(model: FittedModel, dataset: Dataset, *, threads: int = 1) -> pd.DataFrame:
    """One version's predictions on the pool rows, after the ``given`` labels: what does not change per decision."""
    rows = dataset.rows("train")
    scored = predict_with_confidence(model, dataset.features.loc[rows], dataset.schema.classes,
                                     threads=threads).to_frame()
    scored.insert(0, "given", dataset.labels.loc[rows].to_numpy(dtype=object))
    return scored


def with_labels(scored: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """Pool predictions of one version with a ``given`` column, beside the effective labels after
    ``decisions``: cheap (no re-scoring, no re-reading the given labels), so it can run per decision."""
    labels = effective_labels(scored["given"], decisions)
    frame = scored.copy()
    frame.insert(1, "label", labels.to_numpy(dtype=object))
    frame["disagrees"] = frame["label"].notna() & (frame["label"] != frame["predicted"])
    frame["reviewed"] = frame.index.isin(decisions["row_key"]) if not decisions.empty else False
    return frame


def score_table(model: FittedModel, schema: Schema, frame: pd.DataFrame, *, threads: int = 1) -> pd.DataFrame:
    """Predictions for a new table with the project's feature columns, keyed like the project's rows.

    Columns: ``row`` (the ID column's value, else the position), ``predicted``, ``confidence`` and one
    ``p(<class>)`` per class. A table without some feature columns is refused, naming them.
    """
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise DataError(f"The table lacks the model's feature column(s) {missing[:10]}; use a file with the same "
                        "columns as the project's data.")
    if schema.id_column and schema.id_column not in frame.columns:
        raise DataError(f"The table lacks the ID column '{schema.id_column}' that keys the project's rows.")
    X = frame.loc[:, list(schema.features)].set_axis(row_keys(frame, schema.id_column), axis=0)
    scored = predict_with_confidence(model, X, schema.classes, threads=threads).to_frame()
    return scored.rename_axis("row").reset_index()


def decisions_for(rows: pd.DataFrame, *, new_labels: pd.Series | None, model_version: int | None,
                  note: str = "") -> list[DecisionRequest]:
    """Turn reviewed rows of a ``pool_predictions`` frame into decision requests, carrying what was shown.

    ``new_labels`` (indexed by row key) overrides; without it each row's prediction is accepted.
    Each request expects the row's effective label as the person saw it (the ``label`` column).
    """
    requests = []
    for key, row in rows.iterrows():
        new = row["predicted"] if new_labels is None else str(new_labels.loc[key])
        requests.append(DecisionRequest(
            row_key=str(key), new_label=str(new), expected=None if pd.isna(row["label"]) else str(row["label"]),
            predicted_label=str(row["predicted"]), confidence=float(row["confidence"]),
            model_version=model_version, note=note,
        ))
    return requests
