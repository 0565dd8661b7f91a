"""Metrics equal scikit-learn's own functions on hand-written examples; undefined ones are None."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from hitl_core.evaluate import METRIC_NAMES, classification_metrics, confusion

BINARY = ("no", "yes")
Y_BINARY = np.array(["no", "yes", "yes", "no", "yes", "no", "no", "yes"], dtype=object)
P_YES = np.array([0.2, 0.9, 0.4, 0.6, 0.7, 0.1, 0.3, 0.55])
PROBA_BINARY = np.column_stack([1 - P_YES, P_YES])

THREE = ("a", "b", "c")
Y_THREE = np.array(["a", "b", "c", "a", "b", "c", "a", "c", "b"], dtype=object)
PROBA_THREE = np.array([
    [0.7, 0.2, 0.1],
    [0.1, 0.6, 0.3],
    [0.2, 0.3, 0.5],
    [0.3, 0.4, 0.3],  # wrong: predicts b
    [0.5, 0.4, 0.1],  # wrong: predicts a
    [0.1, 0.1, 0.8],
    [0.6, 0.3, 0.1],
    [0.2, 0.5, 0.3],  # wrong: predicts b
    [0.2, 0.7, 0.1],
])


def test_binary_metrics_equal_scikit_learns() -> None:
    got = classification_metrics(Y_BINARY, PROBA_BINARY, BINARY)
    y_pred = np.where(P_YES >= 0.5, "yes", "no")
    expected = {
        "accuracy": skm.accuracy_score(Y_BINARY, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(Y_BINARY, y_pred),
        "precision_macro": skm.precision_score(Y_BINARY, y_pred, average="macro"),
        "recall_macro": skm.recall_score(Y_BINARY, y_pred, average="macro"),
        "f1_macro": skm.f1_score(Y_BINARY, y_pred, average="macro"),
        "roc_auc": skm.roc_auc_score((Y_BINARY == "yes").astype(int), P_YES),
        "log_loss": skm.log_loss(Y_BINARY, PROBA_BINARY, labels=list(BINARY)),
        "brier": skm.brier_score_loss((Y_BINARY == "yes").astype(int), P_YES),
    }
    assert set(got) == set(METRIC_NAMES)
    assert got == pytest.approx(expected)
    assert got["accuracy"] == pytest.approx(6 / 8)  # p(yes)=0.4 for a "yes" and 0.6 for a "no" are wrong


def test_multiclass_metrics_equal_scikit_learns() -> None:
    got = classification_metrics(Y_THREE, PROBA_THREE, THREE)
    y_pred = np.asarray(THREE, dtype=object)[PROBA_THREE.argmax(axis=1)]
    expected = {
        "accuracy": skm.accuracy_score(Y_THREE, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(Y_THREE, y_pred),
        "precision_macro": skm.precision_score(Y_THREE, y_pred, average="macro"),
        "recall_macro": skm.recall_score(Y_THREE, y_pred, average="macro"),
        "f1_macro": skm.f1_score(Y_THREE, y_pred, average="macro"),
        "roc_auc": skm.roc_auc_score(Y_THREE, PROBA_THREE, multi_class="ovr", labels=list(THREE)),
        "log_loss": skm.log_loss(Y_THREE, PROBA_THREE, labels=list(THREE)),
    }
    assert got["brier"] is None  # binary only
    assert {k: v for k, v in got.items() if k != "brier"} == pytest.approx(expected)
    assert got["accuracy"] == pytest.approx(6 / 9)


def test_given_predictions_are_scored_instead_of_the_most_probable_class() -> None:
    uniform = np.full((len(Y_BINARY), 2), 0.5)
    drawn = np.array(["yes"] * len(Y_BINARY), dtype=object)
    got = classification_metrics(Y_BINARY, uniform, BINARY, y_pred=drawn)
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["recall_macro"] == pytest.approx(0.5)
    assert got["roc_auc"] == pytest.approx(0.5)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # balanced accuracy, as expected
def test_roc_auc_is_none_when_only_one_class_is_present() -> None:
    y = np.array(["yes", "yes", "yes"], dtype=object)
    got = classification_metrics(y, PROBA_BINARY[:3], BINARY)
    assert got["roc_auc"] is None
    assert got["accuracy"] == pytest.approx(1 / 3)  # p(yes) 0.2, 0.9, 0.4: only the 0.9 is right


def test_multiclass_roc_auc_is_none_when_a_class_is_absent_from_the_truth() -> None:
    present = Y_THREE != "c"
    got = classification_metrics(Y_THREE[present], PROBA_THREE[present], THREE)
    assert got["roc_auc"] is None
    assert got["log_loss"] is not None


def test_metrics_accept_numeric_labels_as_text() -> None:
    got = classification_metrics(np.array([0, 1, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]),
                                 ("0", "1"))
    assert got["accuracy"] == 1.0 and got["roc_auc"] == 1.0


def test_all_metrics_are_plain_floats() -> None:
    got = classification_metrics(Y_THREE, PROBA_THREE, THREE)
    assert all(type(v) is float for v in got.values() if v is not None)


def test_confusion_matrix_rows_are_true_classes_and_columns_predicted() -> None:
    y_true = np.array(["a", "a", "a", "b"], dtype=object)
    y_pred = np.array(["a", "b", "b", "b"], dtype=object)
    matrix = confusion(y_true, y_pred, ("a", "b", "c"))
    assert matrix.index.name == "true" and matrix.columns.name == "predicted"
    assert matrix.loc["a", "b"] == 2  # two true a's predicted as b
    assert matrix.loc["b", "a"] == 0
    assert matrix.loc["a", "a"] == 1 and matrix.loc["b", "b"] == 1
    assert list(matrix.index) == ["a", "b", "c"] and matrix.loc["c"].sum() == 0


def test_fast_metrics_equal_scikit_learns_on_random_data():
    """classification_metrics (one bincount) must give reference_metrics' (scikit-learn's) numbers."""
    from hitl_core.evaluate import classification_metrics, reference_metrics

    rng = np.random.default_rng(0)
    for trial in range(300):
        k = int(rng.integers(2, 5))
        classes = tuple(f"c{j}" for j in range(k))
        n = int(rng.integers(1, 400))
        proba = rng.dirichlet(np.ones(k) * rng.choice([0.2, 1.0, 5.0]), size=n)
        if trial % 5 == 0:  # hard 0/1 probabilities, as random forests give
            proba = np.round(proba)
            proba[proba.sum(axis=1) == 0, 0] = 1.0
        present = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)  # some classes absent
        y_true = np.asarray(classes, dtype=object)[rng.choice(present, size=n)]
        y_pred = np.asarray(classes, dtype=object)[rng.integers(0, k, n)] if trial % 3 == 0 else None
        fast = classification_metrics(y_true, proba, classes, y_pred=y_pred)
        slow = reference_metrics(y_true, proba, classes, y_pred=y_pred)
        assert fast.keys() == slow.keys()
        for name in slow:
            assert (fast[name] is None) == (slow[name] is None), (trial, name)
            if slow[name] is not None:
                assert abs(fast[name] - slow[name]) <= 1e-12, (trial, name, fast[name], slow[name])


@pytest.mark.parametrize("proba", [
    np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.3, 0.7]]),  # certain and wrong: a probability of exactly 0
    np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]),  # certain and right: exactly 1
    np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32),  # float32: its own epsilon
])
def test_log_loss_on_certain_predictions_equals_scikit_learns(proba) -> None:
    """scikit-learn 1.9 clips at machine epsilon, not 1e-15: -log(1e-15) = 34.5 but -log(eps) = 36.0 per row."""
    from hitl_core.evaluate import reference_metrics

    y = np.array(["no", "yes", "no", "yes"], dtype=object)
    expected = skm.log_loss(y, proba, labels=list(BINARY))
    assert classification_metrics(y, proba, BINARY)["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert reference_metrics(y, proba, BINARY)["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_multiclass_log_loss_with_zeros_equals_scikit_learns() -> None:
    proba = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    y = np.array(["a", "b", "a", "c"], dtype=object)
    expected = skm.log_loss(y, proba, labels=list(THREE))
    assert expected > 27  # three of four rows certain and wrong: 3 × -log(eps) / 4
    assert classification_metrics(y, proba, THREE)["log_loss"] == pytest.approx(expected, rel=1e-12)
