"""Quality signals per person: gold accuracy, pace, automation bias, fatigue; gold rows in the queue and their store."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, active, agreement, quality, users
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 - fixtures

START = pd.Timestamp("2026-11-02 09:00", tz="UTC")


def _world(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Rows with a true label and a calibrated model: right with probability equal to its confidence."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(["yes", "no"], n)
    confidence = rng.uniform(0.5, 1.0, n)
    right = rng.random(n) < confidence
    predicted = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
    return pd.DataFrame({"row_key": [f"r{i}" for i in range(n)], "truth": truth, "predicted_label": predicted,
                         "confidence": confidence})


def _decide(world: pd.DataFrame, user: str, labels, *, seconds=20.0) -> pd.DataFrame:
    """One decision per row, ``seconds`` apart (a scalar or one gap per row)."""
    gaps = np.broadcast_to(np.asarray(seconds, dtype=float), (len(world),))
    times = START + pd.to_timedelta(np.cumsum(gaps), unit="s")
    return pd.DataFrame({"row_key": world["row_key"], "user": user, "label": labels, "created_at": times,
                         "predicted_label": world["predicted_label"], "confidence": world["confidence"]})


def _gold(world: pd.DataFrame, n: int = 40) -> pd.Series:
    return world.set_index("row_key")["truth"].iloc[::max(1, len(world) // n)]


def test_rubber_stamping_reviewer_is_flagged_and_an_accurate_one_is_not():
    world = _world()
    rng = np.random.default_rng(1)
    careful = np.where(rng.random(len(world)) < 0.95, world["truth"],
                       np.where(world["truth"] == "yes", "no", "yes"))
    decisions = pd.concat([_decide(world, "stamp", world["predicted_label"]), _decide(world, "carla", careful)])
    people = {p.user: p for p in quality.person_quality(decisions, _gold(world))}
    stamp, carla = people["stamp"], people["carla"]
    assert stamp.bias.enough and stamp.bias.agrees == 1.0
    assert stamp.bias.flagged
    assert stamp.override_rate == 0.0
    assert not carla.bias.flagged and carla.bias.enough
    assert carla.gold_accuracy > 0.85 and stamp.bias.agrees > stamp.bias.bound + quality.BIAS_MARGIN
    text = " ".join(stamp.sentences())
    assert "Possible automation bias" in text and "kept 100%" in text
    assert "No sign of automation bias" in " ".join(carla.sentences())


def test_bias_is_not_judged_without_enough_gold_answers():
    world = _world()
    decisions = _decide(world, "stamp", world["predicted_label"])
    person = quality.person_quality(decisions, _gold(world, n=5))[0]
    assert person.n_gold < quality.MIN_GOLD and not person.bias.flagged
    assert "Too little to judge automation bias" in " ".join(person.sentences())


def test_bias_bound_is_the_most_two_raters_can_agree():
    votes = _decide(_world(40), "x", "yes")
    bias = quality.automation_bias(votes.assign(confidence=0.55, predicted_label="yes"), gold_accuracy=0.9, n_gold=20)
    assert bias.bound == pytest.approx(0.55 + 0.1)  # min(g, m) + min(1 - g, 1 - m)
    assert bias.agrees == 1.0 and bias.flagged


def test_fatigue_detected_on_a_constructed_slow_down():
    world = _world(90)
    gaps = np.r_[np.full(30, 15.0), np.full(30, 25.0), np.full(30, 45.0)]  # one session, slower towards the end
    labels = world["truth"].to_numpy(copy=True)
    labels[60:][::2] = np.where(labels[60:][::2] == "yes", "no", "yes")  # half wrong late in the session
    gold = world.set_index("row_key")["truth"]
    person = quality.person_quality(_decide(world, "ann", labels, seconds=gaps), gold)[0]
    assert person.fatigue.sessions == 1
    assert person.fatigue.first_seconds == 15 and person.fatigue.last_seconds == 45
    assert person.fatigue.slowing and person.fatigue.accuracy_drop
    text = " ".join(person.sentences())
    assert "median time per decision rose from 15 s" in text and "accuracy on gold fell from 100%" in text


def test_steady_pace_shows_no_fatigue_and_breaks_split_sessions():
    world = _world(60)
    gaps = np.full(60, 20.0)
    gaps[30] = 3 * 3600  # lunch: a new session, not three hours of work
    person = quality.person_quality(_decide(world, "ann", world["truth"], seconds=gaps),
                                    world.set_index("row_key")["truth"])[0]
    assert person.fatigue.sessions == 2
    assert not person.fatigue.slowing and not person.fatigue.accuracy_drop
    assert person.median_seconds == 20 and person.active_hours == pytest.approx(58 * 20 / 3600)
    assert person.per_hour == pytest.approx(180)
    assert "No sign of fatigue" in " ".join(person.sentences())


def test_timings_count_gaps_within_a_person_only():
    decisions = pd.DataFrame({"row_key": ["1", "2", "3", "4"], "user": ["a", "b", "a", "b"], "label": "x",
                              "created_at": START + pd.to_timedelta([0, 5, 10, 100], unit="s"),
                              "predicted_label": None, "confidence": None})
    timed = quality.timings(decisions).set_index("row_key")
    assert math.isnan(timed.loc["1", "seconds"]) and timed.loc["3", "seconds"] == 10
    assert timed.loc["4", "seconds"] == 95


def test_model_agreement_split_by_confidence_band():
    votes = pd.DataFrame({"row_key": list("abcd"), "user": "ann", "label": ["y", "n", "y", "y"],
                          "created_at": START, "predicted_label": "y", "confidence": [0.55, 0.58, 0.7, 0.95]})
    bands = quality.model_agreement_by_band(votes).set_index("band")
    low, medium, high = (bands.loc[name] for _, _, name in quality.CONFIDENCE_BANDS)
    assert (low.n, low.agrees) == (2, 0.5) and (medium.n, medium.agrees) == (1, 1.0) and high.n == 1


def test_quality_of_no_decisions_is_empty():
    assert quality.person_quality(pd.DataFrame(columns=list(agreement.VOTE_COLUMNS)), pd.Series(dtype=object)) == []


# --------------------------------------------------------------------------- gold rows in the queue
def _ranked(n: int = 200, batch: int = 20) -> pd.DataFrame:
    proba = pd.DataFrame({"p(a)": np.linspace(0.01, 0.99, n)}, index=[f"k{i}" for i in range(n)])
    proba["p(b)"] = 1 - proba["p(a)"]
    return active.rank_pool("margin", proba, batch_size=batch)


def test_gold_rows_take_their_share_of_the_batch_unmarked():
    ranked, gold = _ranked(), [f"k{i}" for i in range(0, 200, 7)]
    own = ranked.index[ranked["in_batch"] & ranked.index.isin(gold)]  # gold rows the strategy picked itself
    assert len(own) == 3
    mixed = active.mix_gold(ranked, gold, 0.2, seed=3)
    batch = mixed[mixed["in_batch"]].sort_values("rank")
    assert len(batch) == 20 and list(batch["rank"]) == list(range(1, 21))
    assert batch.index.isin(gold).sum() == 4  # 20 % of 20: the strategy's three and one drawn
    drawn = batch.index[batch.index.isin(gold) & ~batch.index.isin(own)]
    assert len(drawn) == 1 and set(batch.loc[drawn, "reason"]) == {active.GOLD_REASON}
    assert not any("gold" in r for r in mixed["reason"])
    kept = batch.index[~batch.index.isin(drawn)]
    assert list(kept) == list(ranked[ranked["in_batch"]].sort_values("rank").index[:19])
    assert mixed.equals(active.mix_gold(ranked, gold, 0.2, seed=3))


def test_gold_rate_holds_over_many_batches():
    ranked, gold = _ranked(batch=7), [f"k{i}" for i in range(150, 200)]  # far from the torn middle
    shares = [active.mix_gold(ranked, gold, 0.15, seed=s).query("in_batch").index.isin(gold).mean()
              for s in range(200)]
    assert np.mean(shares) == pytest.approx(0.15, abs=0.01)


def test_no_gold_rate_or_no_gold_rows_leave_the_queue_alone():
    ranked = _ranked()
    assert active.mix_gold(ranked, ["k1"], 0.0) is ranked
    assert active.mix_gold(ranked, [], 0.3) is ranked
    assert active.mix_gold(ranked, ["not a row"], 0.3) is ranked


# --------------------------------------------------------------------------- gold rows through the write path
def test_gold_rows_and_rate_are_stored_with_events(database_url: str):  # noqa: F811
    store = Store(database_url)
    project = create_project(store)
    keys = list(store.pool_rows(project)[0][:3])
    classes = project.schema.classes
    assert store.gold(project.id).empty and store.gold_rate(project.id) == 0.0
    assert actions.set_gold(store, project.id, "lea", {keys[0]: classes[0], keys[1]: classes[1]}) == 2
    assert actions.set_gold(store, project.id, "lea", {keys[0]: classes[0]}) == 0  # unchanged: no event
    actions.set_gold(store, project.id, "lea", {keys[1]: None, keys[2]: classes[2]})
    assert store.gold(project.id).to_dict() == {keys[0]: classes[0], keys[2]: classes[2]}
    assert actions.set_gold_rate(store, project.id, "lea", 0.1) == 0.1
    assert store.gold_rate(project.id) == 0.1
    events = store.events(project.id)
    gold_events = events[events["action"] == "gold"]
    assert len(gold_events) == 4
    assert json.loads(gold_events.iloc[-2]["after"]) == {"gold": None}
    rate = events[events["after"].fillna("").str.contains("gold_rate")]
    assert json.loads(rate.iloc[-1]["after"]) == {"gold_rate": 0.1}
    store.engine.dispose()


def test_gold_refuses_wrong_labels_rows_and_roles(store: Store, wine, wine_schema):
    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg")
    pool_key = store.pool_rows(project)[0][0]
    with pytest.raises(actions.InvalidAction, match="is not a class"):
        actions.set_gold(store, project.id, "ana", {pool_key: "merlot"})
    outside = next(k for k in store.load_dataset(project).rows("test"))
    with pytest.raises(actions.InvalidAction, match="not in this project's review pool"):
        actions.set_gold(store, project.id, "ana", {outside: wine_schema.classes[0]})
    with pytest.raises(actions.InvalidAction, match="between 0 and 0.5"):
        actions.set_gold_rate(store, project.id, "ana", 0.9)
    actions.add_user(store, "ana", name="ana", role="admin")
    actions.add_user(store, "ana", name="nico", role="annotator")
    with pytest.raises(users.PermissionDenied, match="annotator may not adjudicate"):
        actions.set_gold(store, project.id, "nico", {pool_key: wine_schema.classes[0]})
    with pytest.raises(users.PermissionDenied, match="annotator may not change settings"):
        actions.set_gold_rate(store, project.id, "nico", 0.1)
    assert store.gold(project.id).empty


def test_withdrawing_a_row_removes_its_gold_answer(store: Store, wine, wine_schema):
    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg", retrain_policy="manual")
    gone, kept = (str(k) for k in store.pool_rows(project)[0][:2])
    actions.set_gold(store, project.id, "ana", {gone: wine_schema.classes[0], kept: wine_schema.classes[1]})
    actions.withdraw_rows(store, project.id, "ana", [gone], "the data subject asked")
    assert store.gold(project.id).to_dict() == {kept: wine_schema.classes[1]}
