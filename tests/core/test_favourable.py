"""The favourable outcome: named by a person, stored in the schema, and what every fairness figure is about.

On mortgage data (HMDA's ``deny``: no/yes) the last class is the *bad* outcome; taking it as the
positive class makes the four-fifths rule judge denials, and name the wrong group.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, fairness, loop
from hitl_core.actions import InvalidAction
from hitl_core.data import Dataset, DataError, Schema, check
from hitl_core.fairness import DISPARITIES, GROUP_METRICS, fairness_report
from hitl_core.models import predict_with_confidence
from hitl_core.samples import load_sample
from hitl_core.store import Store, Tx


def _hmda_like(deny_a: float, deny_b: float, n: int = 200) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Labels, predictions and groups where the model denies group A at ``deny_a`` and group B at ``deny_b``."""
    y_pred = np.array(["yes"] * round(deny_a * n) + ["no"] * (n - round(deny_a * n))
                      + ["yes"] * round(deny_b * n) + ["no"] * (n - round(deny_b * n)), dtype=object)
    rng = np.random.default_rng(0)
    y_true = np.where(rng.random(2 * n) < 0.85, y_pred, np.where(y_pred == "yes", "no", "yes"))  # 85 % right
    return y_true, y_pred, pd.Series(["A"] * n + ["B"] * n, name="race")


def _report(favourable: str, deny_a: float, deny_b: float) -> fairness.FairnessReport:
    y_true, y_pred, groups = _hmda_like(deny_a, deny_b)
    return fairness_report(y_true, y_pred, sensitive_features=groups, classes=("no", "yes"), positive=favourable)


def test_the_four_fifths_verdict_flips_with_the_favourable_outcome() -> None:
    # A is denied 20 % of the time, B 5 %: approvals 80 % against 95 %, within four-fifths of each other
    denials = _report("yes", 0.20, 0.05)
    approvals = _report("no", 0.20, 0.05)
    assert denials.demographic_parity_ratio == pytest.approx(0.05 / 0.20)
    assert denials.four_fifths_violated is True
    assert denials.below_four_fifths() == ("B",)  # "B is selected too rarely": for denial, the wrong story
    assert approvals.demographic_parity_ratio == pytest.approx(0.80 / 0.95)
    assert approvals.four_fifths_violated is False and approvals.below_four_fifths() == ()
    assert approvals.by_group["selection_rate"].tolist() == pytest.approx([0.80, 0.95])  # share approved


def test_the_group_named_follows_the_favourable_outcome() -> None:
    # A is denied 40 %, B 10 %: both readings fail the rule, but only approval names the group held back
    assert _report("yes", 0.40, 0.10).below_four_fifths() == ("B",)
    approvals = _report("no", 0.40, 0.10)
    assert approvals.four_fifths_violated is True and approvals.below_four_fifths() == ("A",)
    assert approvals.demographic_parity_ratio == pytest.approx(0.60 / 0.90)


# --------------------------------------------------------------------------- the schema
def _frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """A small mortgage table: group A is denied more often at equal income."""
    rng = np.random.default_rng(seed)
    race = rng.choice(["A", "B"], size=n)
    income = rng.lognormal(11, 0.4, n).round(-2)
    debt = rng.beta(2, 5, n).round(3)
    score = -1.5 + 4 * debt - 0.8 * np.log(income / 60000) + 1.2 * (race == "A")
    deny = np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "yes", "no")
    return pd.DataFrame({"application": np.arange(n), "race": race, "income": income, "debt_ratio": debt,
                         "deny": deny})


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def test_check_names_the_favourable_outcome(frame: pd.DataFrame) -> None:
    schema, _ = check(frame, "deny", id_column="application", sensitive=["race"], favourable="no")
    assert schema.favourable == "no"
    assert check(frame, "deny", id_column="application", sensitive=["race"])[0].favourable is None  # never guessed


def test_check_rejects_a_favourable_outcome_that_is_not_a_class(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'approved' is not a class of 'deny'.*\['no', 'yes'\]"):
        check(frame, "deny", sensitive=["race"], favourable="approved")


def test_the_schema_json_round_trip_keeps_the_favourable_outcome(frame: pd.DataFrame) -> None:
    schema = check(frame, "deny", sensitive=["race"], favourable="no")[0]
    assert json.loads(schema.to_json())["favourable"] == "no"
    assert Schema.from_json(schema.to_json()) == schema
    unnamed = schema.with_favourable(None)
    assert Schema.from_json(unnamed.to_json()) == unnamed and unnamed.favourable is None


def test_a_schema_stored_before_the_field_existed_loads_without_one(frame: pd.DataFrame) -> None:
    schema = check(frame, "deny", sensitive=["race"])[0]
    old = json.loads(schema.to_json())
    del old["favourable"]  # as written by earlier versions: no migration needed
    loaded = Schema.from_json(json.dumps(old))
    assert loaded.favourable is None and loaded == schema


# --------------------------------------------------------------------------- the write path
@pytest.fixture
def project(store: Store, frame: pd.DataFrame):
    schema = check(frame, "deny", id_column="application", sensitive=["race"])[0]
    created, _ = actions.create_project(store, "ana", name="mortgages", source="upload:hmda.csv", frame=frame,
                                        schema=schema, model_kind="logreg")
    return created


def test_setting_the_favourable_outcome_writes_the_schema_and_an_event(store: Store, project) -> None:
    updated = actions.set_favourable_outcome(store, project.id, "ana", "no")
    assert updated.schema.favourable == "no"
    assert store.project(project.id).schema.favourable == "no"  # read back from SQL
    assert store.load_dataset(store.project(project.id)).schema.favourable == "no"
    event = store.events(project.id).iloc[-1]
    assert (event["actor"], event["action"]) == ("ana", "settings")
    assert json.loads(event["before"]) == {"favourable": None} and json.loads(event["after"]) == {"favourable": "no"}
    n_events = len(store.events(project.id))
    actions.set_favourable_outcome(store, project.id, "bo", "no")  # unchanged: nothing to record
    assert len(store.events(project.id)) == n_events
    actions.set_favourable_outcome(store, project.id, "bo", "yes")  # a change of mind is recorded too
    assert json.loads(store.events(project.id).iloc[-1]["before"]) == {"favourable": "no"}


@pytest.mark.parametrize("wrong", ["approved", None, ""])
def test_setting_a_favourable_outcome_that_is_not_a_class_is_refused(store: Store, project, wrong) -> None:
    n_events = len(store.events(project.id))
    with pytest.raises(InvalidAction, match=r"\['no', 'yes'\]"):
        actions.set_favourable_outcome(store, project.id, "ana", wrong)
    assert store.project(project.id).schema.favourable is None
    assert len(store.events(project.id)) == n_events


def test_the_schema_and_its_event_are_written_together(store: Store, project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self, **kwargs):
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(Tx, "add_event", fail)
    with pytest.raises(RuntimeError, match="audit trail"):
        actions.set_favourable_outcome(store, project.id, "ana", "no")
    assert store.project(project.id).schema.favourable is None  # rolled back with the event


# --------------------------------------------------------------------------- stored history
def _validation(dataset: Dataset):
    model = loop.fit_on_pool(dataset, dataset.labels, "logreg")
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    return model, truth, predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes)


def test_summaries_and_breakdowns_use_the_favourable_outcome(frame: pd.DataFrame) -> None:
    schema = check(frame, "deny", id_column="application", sensitive=["race"], favourable="no")[0]
    dataset = Dataset.create("mortgages", frame, schema, seed=0)
    model, truth, preds = _validation(dataset)
    for engine in ("grouped", "metricframe"):
        stored = fairness.summaries(dataset, truth, preds, engine=engine)
        assert [(r["sensitive"], r["positive_class"]) for r in stored] == [("race", "no")]
    assert fairness.breakdown(model, dataset, ["race"]).positive_class == "no"
    unnamed = Dataset(name="mortgages", frame=dataset.frame, schema=schema.with_favourable(None), split=dataset.split)
    assert [r["positive_class"] for r in fairness.summaries(unnamed, truth, preds)] == ["yes"]  # as before


def test_a_version_stored_for_the_other_outcome_answers_for_the_favourable_one(frame: pd.DataFrame) -> None:
    """Versions stored before anyone chose (last class, 'yes') still give the history of approvals, exactly."""
    schema = check(frame, "deny", id_column="application", sensitive=["race"])[0]
    dataset = Dataset.create("mortgages", frame, schema, seed=0)
    model, truth, preds = _validation(dataset)
    stored = fairness.summaries(dataset, truth, preds)
    assert [r["positive_class"] for r in stored] == ["yes"]
    assert fairness.find_summary(stored, ["race"], "no") is None  # without the classes nothing is assumed
    derived = fairness.find_summary(stored, ["race"], "no", classes=schema.classes)
    direct = fairness.report_for(dataset, truth, preds, ["race"], positive="no")
    assert derived.positive_class == "no"
    np.testing.assert_allclose(derived.by_group[list(GROUP_METRICS)].to_numpy(dtype=float),
                               direct.by_group[list(GROUP_METRICS)].to_numpy(dtype=float), rtol=0, atol=1e-12)
    for name in DISPARITIES:
        assert getattr(derived, name) == pytest.approx(getattr(direct, name), abs=1e-12), name
    assert derived.four_fifths_violated == direct.four_fifths_violated
    live = fairness.report_for(dataset, truth, preds, ["race"], positive="yes").for_other_class("no")
    for metric, value in direct.overall.items():
        assert live.overall[metric] == pytest.approx(value, abs=1e-12, nan_ok=True), metric


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_other_outcome_is_derived_exactly_even_for_one_sided_and_small_groups(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    groups = pd.Series(rng.choice(["a", "b", "c", "only yes", "only no", "tiny"], n, p=[.3, .3, .2, .08, .08, .04]),
                       name="g")
    y_true = rng.choice(["no", "yes"], n).astype(object)
    y_true[groups.to_numpy() == "only yes"] = "yes"  # no negatives: FPR undefined
    y_true[groups.to_numpy() == "only no"] = "no"  # no positives: TPR undefined
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice(["no", "yes"], n)).astype(object)
    y_pred[groups.to_numpy() == "c"] = "no"  # never predicted 'yes': precision undefined
    common = dict(sensitive_features=groups, classes=("no", "yes"), confidence=rng.uniform(0.5, 1, n),
                  min_group_size=30)
    for stored, wanted in (("yes", "no"), ("no", "yes")):
        source = fairness_report(y_true, y_pred, positive=stored, **common)
        direct = fairness_report(y_true, y_pred, positive=wanted, **common)
        for derived in (source.for_other_class(wanted),
                        fairness.find_summary([source.to_dict()], ["g"], wanted, classes=("no", "yes"))):
            np.testing.assert_allclose(derived.by_group[list(GROUP_METRICS)].to_numpy(dtype=float),
                                       direct.by_group[list(GROUP_METRICS)].to_numpy(dtype=float), rtol=0, atol=1e-12)
            assert derived.too_small == direct.too_small == ("tiny",)
            for name in DISPARITIES:
                assert getattr(derived, name) == pytest.approx(getattr(direct, name), abs=1e-12, nan_ok=True), name


def test_the_history_follows_the_favourable_outcome(store: Store, project) -> None:
    actions.set_favourable_outcome(store, project.id, "ana", "no")
    actions.retrain(store, project.id, "ana", trigger="manual")
    versions = store.model_versions(project.id)
    assert [[r["positive_class"] for r in v.fairness] for v in versions] == [["yes"], ["no"]]  # before, after
    classes = store.project(project.id).schema.classes
    history = fairness.history_frame(versions, ["race"], "no", classes=classes)
    assert list(history["version"]) == [1, 2]  # version 1 (stored for 'yes') converted
    assert history["demographic_parity_ratio"].between(0, 1).all()


def test_a_multiclass_favourable_outcome_is_always_stored() -> None:
    classes = tuple(f"c{i:02d}" for i in range(fairness.MAX_HISTORY_CLASSES + 2))
    schema = Schema(target="t", classes=classes, numeric=("x",), categorical=(), sensitive=("g",))
    assert fairness.stored_classes(schema) == list(classes[:fairness.MAX_HISTORY_CLASSES])
    assert fairness.stored_classes(schema.with_favourable(classes[-1]))[-1] == classes[-1]


def test_the_loan_sample_says_an_approval_is_favourable() -> None:
    sample = load_sample("loan")
    assert sample.favourable == "yes"
    assert check(sample.frame, sample.target, sensitive=sample.sensitive, favourable=sample.favourable)[0].favourable \
        == "yes"
