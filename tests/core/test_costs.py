"""Costs of decisions: hand-checked sums, the bootstrap interval, baselines, the triage cost curve and the action."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from hitl_core import actions, costs
from hitl_core.costs import CostError, CostModel
from hitl_core.store import Store, event_record
from tests.core.helpers import ACTOR
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)

LOAN = CostModel.binary(("no", "yes"), favourable="no", wrongly_favourable=10.0, wrongly_unfavourable=2.0,
                        review=1.0, unit="€")  # deciding "no" (not defaulting) for a defaulter costs 10


# --------------------------------------------------------------------------- the cost model
def test_binary_costs_name_the_favourable_outcome():
    assert LOAN.cost("yes", "no") == 10.0 and LOAN.cost("no", "yes") == 2.0
    assert LOAN.cost("no", "no") == LOAN.cost("yes", "yes") == 0.0
    (t1, p1), (t2, p2) = costs.binary_errors(("no", "yes"), "no")
    assert (t1, p1) == ("yes", "no") and (t2, p2) == ("no", "yes")
    assert costs.error_name(t1, p1, target="default", favourable="no") == \
        "deciding default = no (favourable) when it is yes"


def test_without_a_favourable_outcome_the_last_class_is_the_positive_one():
    model = CostModel.binary(("a", "b"), favourable=None, wrongly_favourable=3, wrongly_unfavourable=1, review=0)
    assert model.cost("a", "b") == 3 and model.cost("b", "a") == 1


def test_costs_round_trip_through_json():
    matrix = CostModel(("a", "b", "c"), ((0, 1, 2), (3, 0, 4), (5, 6, 0.5)), review=0.25, unit="hours")
    assert CostModel.from_json(matrix.to_json()) == matrix
    assert json.loads(matrix.to_json())["unit"] == "hours"


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(matrix=((0, -1), (1, 0))), "deciding 'b' when the truth is 'a' is -1; costs are 0 or more"),
    (dict(matrix=((0, math.nan), (1, 0))), "is nan; give a finite amount"),
    (dict(matrix=((0, math.inf), (1, 0))), "is inf; give a finite amount"),
    (dict(matrix=((0, "lots"), (1, 0))), "is 'lots', not a number"),
    (dict(matrix=((0, 1, 2), (1, 0, 2))), "The cost matrix is 2×3 but there are 2 classes (a, b)"),
    (dict(matrix=((0, 0), (0, 0))), "Every wrong decision costs 0"),
    (dict(review=-2), "The cost of one human review is -2"),
    (dict(unit=" "), "Name the unit of the costs in 1 to 20 characters"),
    (dict(unit="x" * 21), "Name the unit of the costs in 1 to 20 characters"),
])
def test_impossible_costs_are_refused_with_a_message_naming_the_number(kwargs, message):
    settings = {"classes": ("a", "b"), "matrix": ((0, 1), (1, 0)), "review": 1, "unit": "€", **kwargs}
    with pytest.raises(CostError) as refused:
        CostModel(**settings)
    assert message in str(refused.value)


def test_a_multiclass_target_is_refused_the_binary_form():
    with pytest.raises(CostError, match="this target has 3: give a full cost matrix"):
        CostModel.binary(("a", "b", "c"), favourable="a", wrongly_favourable=1, wrongly_unfavourable=1, review=1)


# --------------------------------------------------------------------------- expected cost
def test_expected_cost_equals_the_sum_by_hand():
    y_true = ["no", "no", "yes", "yes", "yes", "no"]
    y_pred = ["no", "yes", "no", "yes", "no", "no"]  # one false "yes" (2 €), two defaulters approved (10 € each)
    cost = costs.expected_cost(y_true, y_pred, LOAN)
    assert cost.total == 22.0 and cost.n_rows == 6 and cost.per_row == pytest.approx(22 / 6)
    assert cost.costly_errors == 3 and cost.unit == "€"
    assert cost.text() == "367 € per 100 decisions"


def test_multiclass_expected_cost_reads_the_matrix_by_true_then_decided():
    model = CostModel(("a", "b", "c"), ((0, 1, 2), (3, 0, 4), (5, 6, 0)), review=1)
    cost = costs.expected_cost(["a", "b", "c", "c"], ["c", "a", "b", "c"], model)
    assert cost.total == 2 + 3 + 6 and cost.costly_errors == 3


def test_labels_outside_the_cost_model_are_named():
    with pytest.raises(CostError, match=r"\['maybe'\] are not classes"):
        costs.expected_cost(["no", "maybe"], ["no", "no"], LOAN)


def test_the_interval_is_seeded_holds_the_estimate_and_matches_scipy_bootstrap():
    rng = np.random.default_rng(3)
    y_true = rng.choice(["no", "yes"], size=400, p=[0.7, 0.3])
    y_pred = np.where(rng.random(400) < 0.8, y_true, np.where(y_true == "no", "yes", "no"))
    first = costs.cost_interval(y_true, y_pred, LOAN, seed=7)
    assert first == costs.cost_interval(y_true, y_pred, LOAN, seed=7)
    assert first.low < first.per_row < first.high and first.confidence == 0.95
    per_row = np.array([LOAN.cost(t, p) for t, p in zip(y_true, y_pred)])
    reference = stats.bootstrap((per_row,), np.mean, confidence_level=0.95, n_resamples=4000, method="percentile",
                                random_state=np.random.default_rng(7)).confidence_interval
    width = reference.high - reference.low
    assert abs(first.low - reference.low) < 0.1 * width and abs(first.high - reference.high) < 0.1 * width
    assert "±" in first.text() and first.text().endswith("€ per 100 decisions")


def test_costs_with_no_spread_have_a_zero_width_interval():
    cost = costs.cost_interval(["yes"] * 5, ["no"] * 5, LOAN)
    assert cost.low == cost.high == cost.per_row == 10.0


def test_baselines_by_hand():
    truth = np.array([6.0, 4.0])  # 6 "no", 4 "yes"
    cells = costs.baseline_counts(truth, LOAN.classes, majority="no")
    assert costs.cost_of_counts(cells["majority"], LOAN).total == 4 * 10  # every defaulter approved
    assert costs.cost_of_counts(cells["random"], LOAN).total == pytest.approx(6 * 0.5 * 2 + 4 * 0.5 * 10)
    assert costs.majority_class(["yes", "no", "no", None]) == "no"
    assert costs.majority_class(["b", "a"]) == "a"  # a tie goes to the first class in sorted order


def test_version_costs_come_from_the_stored_confusion_matrix(store: Store, wine, wine_schema):
    from tests.core.helpers import start_wine

    project, version = start_wine(store, wine, wine_schema)
    classes = project.schema.classes
    matrix = tuple(tuple(0.0 if i == j else float(1 + i + j) for j in range(3)) for i in range(3))
    model = CostModel(classes, matrix, review=0.5, unit="hours")
    found = costs.version_costs(version, model, majority=classes[0], seed=1)
    rows = [(t, p) for t, row in version.confusion.items() for p, n in row.items() for _ in range(n)]
    by_hand = costs.expected_cost([t for t, _ in rows], [p for _, p in rows], model)
    assert found["model"].total == by_hand.total and found["model"].low <= found["model"].per_row
    assert set(found) == {"model", "majority", "random"}
    assert found["majority"].per_row > found["model"].per_row  # the model beats always answering class 0


# --------------------------------------------------------------------------- triage cost curve
def _triage_case() -> tuple[list[str], np.ndarray]:
    y_true = ["no", "yes", "yes", "no", "no", "yes"]
    p_yes = np.array([0.1, 0.45, 0.35, 0.6, 0.2, 0.9])  # confidences 0.9, 0.55, 0.65, 0.6, 0.8, 0.9
    return y_true, np.column_stack([1 - p_yes, p_yes])


def test_triage_costs_by_hand():
    y_true, proba = _triage_case()
    frame = costs.triage_costs(y_true, proba, LOAN.classes, LOAN, human_accuracy=0.9, thresholds=[0.0, 0.62, 1.0])
    alone = frame.iloc[0]
    # the model approves the two defaulters at 0.55 and 0.65 confidence (10 € each) and refuses row 4 at 0.6 (2 €)
    assert alone["total_cost"] == 22 and alone["costly_errors"] == 3 and alone["caught"] == 0
    at = frame[(frame["point"] == "threshold") & (frame["threshold"] == 0.62)].iloc[0]
    assert at["n_to_human"] == 2  # confidences 0.55 and 0.6
    people = 0.1 * (10 + 2)  # wrong 10 % of the time on the defaulter and on the good payer
    assert at["total_cost"] == pytest.approx(2 * 1.0 + people + 10)
    assert at["caught"] == pytest.approx(0.9 * 2)
    everyone = frame.iloc[-1]
    assert everyone["total_cost"] == pytest.approx(6 + 0.1 * (3 * 2 + 3 * 10))


def test_the_cheapest_threshold_is_the_argmin_of_the_curve():
    rng = np.random.default_rng(0)
    y_true = rng.choice(["no", "yes"], size=300)
    p_yes = np.clip(np.where(y_true == "yes", 0.65, 0.35) + rng.normal(0, 0.2, 300), 0, 1)
    frame = costs.triage_costs(y_true, np.column_stack([1 - p_yes, p_yes]), LOAN.classes, LOAN, human_accuracy=0.95)
    assert frame["cheapest"].sum() == 1
    best = costs.cheapest(frame)
    assert best["total_cost"] == frame["total_cost"].min()
    assert best.name == frame["total_cost"].to_numpy().argmin()
    assert 0 < best["n_to_human"] < 300  # reviews at 1 € against 10 € errors: worth some, not all
    sentence = costs.triage_sentence(frame, LOAN)
    assert sentence.startswith(f"At {best['threshold']:.2f}, people review {int(best['n_to_human'])} of 300")
    assert f"of the {int(best['costly_errors'])} costly errors" in sentence
    assert f"with no review" in sentence and costs.format_amount(frame.iloc[0]["total_cost"], "€") in sentence


def test_reviews_dearer_than_errors_make_reviewing_nothing_cheapest():
    y_true, proba = _triage_case()
    dear = CostModel.binary(("no", "yes"), favourable="no", wrongly_favourable=1, wrongly_unfavourable=1, review=50)
    frame = costs.triage_costs(y_true, proba, dear.classes, dear, human_accuracy=1.0)
    assert costs.cheapest(frame)["n_to_human"] == 0
    assert costs.triage_sentence(frame, dear).startswith("Reviewing nothing is cheapest")


def test_triage_costs_refuse_costs_for_other_classes():
    y_true, proba = _triage_case()
    with pytest.raises(CostError, match=r"the target has \['a', 'b'\]"):
        costs.triage_costs(y_true, proba, ("a", "b"), LOAN)


# --------------------------------------------------------------------------- the one write path
@pytest.fixture
def backend_store(database_url: str):  # noqa: F811 (the fixture of tests.support.databases)
    store = Store(database_url)
    yield store
    store.engine.dispose()


def test_set_costs_stores_them_with_an_event_on_each_backend(backend_store: Store):
    project = create_project(backend_store, "loan")
    assert costs.project_costs(project) is None
    model = CostModel.binary(project.schema.classes, favourable=project.schema.classes[0], wrongly_favourable=500,
                             wrongly_unfavourable=120, review=15, unit="USD")
    changed = actions.set_costs(backend_store, project.id, ACTOR, model)
    assert costs.project_costs(changed) == model == costs.project_costs(backend_store, project.id)
    cheaper = CostModel(model.classes, model.matrix, review=5, unit="USD")
    actions.set_costs(backend_store, project.id, "bob", cheaper)
    actions.set_costs(backend_store, project.id, "bob", cheaper)  # no change: no event
    events = [event_record(r) for _, r in backend_store.events(project.id).iterrows()]
    changes = [e for e in events if e.action == "costs"]
    assert [(e.actor, e.before, e.after) for e in changes] == [
        (ACTOR, None, model.to_dict()), ("bob", model.to_dict(), cheaper.to_dict())]


def test_costs_for_other_classes_are_refused_and_nothing_is_written(store: Store, wine, wine_schema):
    from tests.core.helpers import start_wine

    project, _ = start_wine(store, wine, wine_schema)
    with pytest.raises(actions.InvalidAction, match="the target has"):
        actions.set_costs(store, project.id, ACTOR, LOAN)
    assert costs.project_costs(store, project.id) is None
    assert "costs" not in set(store.events(project.id)["action"])


def test_cost_charts_start_at_zero_and_show_the_unit_as_typed():
    from hitl_core import charts

    unit = '<a href="x">€</a>'
    model = CostModel(LOAN.classes, LOAN.matrix, review=LOAN.review, unit=unit)
    y_true, proba = _triage_case()
    frame = costs.triage_costs(y_true, proba, model.classes, model, human_accuracy=0.9)
    estimates = {"model": costs.cost_interval(y_true, ["no"] * 6, model),
                 **{k: costs.cost_of_counts(c, model) for k, c in costs.baseline_counts(np.array([3, 3]),
                                                                                       model.classes, "no").items()}}
    for figure in (charts.triage_cost_curve(frame, unit, threshold=0.7), charts.expected_costs(estimates, {})):
        text = figure.to_json()
        assert "<a href" not in text and "&lt;a href" in text
        assert figure.layout.yaxis.rangemode == "tozero"
    curve = charts.triage_cost_curve(frame, unit)
    star = next(t for t in curve.data if t.name == "cheapest")
    assert star.y[0] == costs.cheapest(frame)["total_cost"]


def test_compare_costs_both_versions_and_hedges_overlapping_intervals(store: Store, wine, wine_schema):
    from hitl_core import compare, jobs
    from tests.core.helpers import corrections, start_wine

    project, _ = start_wine(store, wine, wine_schema)
    actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 20))
    jobs.run_now(store, project.id, ACTOR)
    v1, v2 = store.model_versions(project.id)
    classes = project.schema.classes
    model = CostModel(classes, tuple(tuple(0.0 if i == j else 1.0 for j in range(3)) for i in range(3)), review=0.1)
    table = compare.costs_table(v2, v1, model, majority_a=classes[0], majority_b=classes[0])
    row = table.set_index("measure").loc["expected cost per 100 decisions"]
    for name, version in (("v1", v1), ("v2", v2)):  # every error costs 1: cost per 100 = errors in 100
        assert row[name] == pytest.approx(100 * (1 - version.validation["accuracy"]))
    assert row["change"] == pytest.approx(row["v1"] - row["v2"])
    assert set(table.columns) >= {"v1 interval", "v2 interval", "better"}
    same = costs.ExpectedCost(0.4, 40, 100, 30, "€", low=0.3, high=0.5, confidence=0.95)
    close = costs.ExpectedCost(0.45, 45, 100, 33, "€", low=0.35, high=0.55, confidence=0.95)
    far = costs.ExpectedCost(0.9, 90, 100, 70, "€", low=0.8, high=1.0, confidence=0.95)
    assert "no clear difference in cost" in compare._costs_sentence(same, close, "v1", "v2")
    assert compare._costs_sentence(same, far, "v1", "v2").endswith(
        "v1 is cheaper (the 95 % intervals do not overlap).")


def test_a_database_from_before_costs_upgrades_and_takes_costs(tmp_path):
    import shutil

    from tests.core.test_migrations import WAVE1

    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)
    store = Store(f"sqlite:///{path}")
    try:
        project = store.projects()[0]
        assert costs.project_costs(project) is None and len(store.decisions(project.id)) == 5
        classes = project.schema.classes
        matrix = tuple(tuple(0.0 if t == p else 2.0 for p in classes) for t in classes)
        actions.set_costs(store, project.id, ACTOR, CostModel(classes, matrix, review=1, unit="€"))
        assert costs.project_costs(store, project.id).cost(classes[0], classes[1]) == 2.0
    finally:
        store.engine.dispose()


def test_the_model_against_always_deciding_the_majority_class_in_words():
    def cost(per_row: float, spread: float) -> costs.ExpectedCost:
        return costs.ExpectedCost(per_row, per_row * 100, 100, 10, "€", low=per_row - spread, high=per_row + spread,
                                  confidence=0.95)

    cheaper = costs.baseline_sentence({"model": cost(0.4, 0.05), "majority": cost(0.9, 0.1)}, "no")
    assert cheaper == "The model costs less than always deciding no: 40.0 ± 5.0 € per 100 decisions against " \
                      "90.0 ± 10.0 € per 100 decisions."
    dearer = costs.baseline_sentence({"model": cost(0.9, 0.1), "majority": cost(0.4, 0.05)}, "no")
    assert dearer.startswith("The model costs more than always deciding no") and "cheapest threshold" in dearer
    unclear = costs.baseline_sentence({"model": cost(0.5, 0.1), "majority": cost(0.55, 0.1)}, "no")
    assert unclear.startswith("No clear difference") and "intervals overlap" in unclear


def test_only_leads_and_admins_set_costs(store: Store, wine, wine_schema):
    from hitl_core import users
    from tests.core.helpers import start_wine

    project, _ = start_wine(store, wine, wine_schema)
    actions.add_user(store, ACTOR, name="root", role="admin", password="root password")
    for name, role in (("lea", "lead"), ("ann", "annotator"), ("vic", "viewer")):
        actions.add_user(store, "root", name=name, role=role, password=f"{name} password")
    classes = project.schema.classes
    model = CostModel(classes, tuple(tuple(0.0 if t == p else 1.0 for p in classes) for t in classes), review=0.5)
    for name, role in (("ann", "annotator"), ("vic", "viewer")):
        with pytest.raises(users.PermissionDenied, match=f"permission denied: {role} may not set costs"):
            actions.set_costs(store, project.id, name, model)
    assert costs.project_costs(store, project.id) is None
    actions.set_costs(store, project.id, "lea", model)
    assert costs.project_costs(store, project.id) == model
