"""Agreement: the figures equal the reference libraries and hand-computed cases, with missing ratings."""
from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from hitl_core import agreement as ag


def _votes(table: dict[str, list]) -> pd.DataFrame:
    """A vote frame from {person: [label per row or None]} (rows r0, r1, …)."""
    rows = [{"row_key": f"r{i}", "user": user, "label": label, "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
             "predicted_label": None, "confidence": None}
            for user, labels in table.items() for i, label in enumerate(labels) if label is not None]
    return pd.DataFrame(rows, columns=list(ag.VOTE_COLUMNS))


def test_cohen_kappa_by_hand_two_people():
    # 10 rows: agree on 7 (4 yes, 3 no); p_o = 0.7; alice 6 yes / bob 5 yes: p_e = 0.6*0.5 + 0.4*0.5 = 0.5
    alice = ["yes"] * 6 + ["no"] * 4
    bob = ["yes", "yes", "yes", "yes", "no", "no", "yes", "no", "no", "no"]
    result = ag.agreement(_votes({"alice": alice, "bob": bob}))
    pair = result.cohen.iloc[0]
    assert (pair.rater_a, pair.rater_b, pair.n_shared) == ("alice", "bob", 10)
    assert pair.kappa == pytest.approx((0.7 - 0.5) / (1 - 0.5))
    assert result.percent_agreement == pytest.approx(0.7)
    assert result.to_json()["cohen_kappa"] == {"alice|bob": pytest.approx(0.4)}


def test_cohen_kappa_uses_only_rows_both_labelled():
    alice = ["a", "b", "a", "b", "a", None]
    bob = ["a", "b", "b", None, "a", "b"]
    pair = ag.cohen_pairs(ag.rating_table(_votes({"alice": alice, "bob": bob}))).iloc[0]
    assert pair.n_shared == 4
    assert pair.kappa == pytest.approx(cohen_kappa_score(["a", "b", "a", "a"], ["a", "b", "b", "a"]))


@pytest.mark.parametrize("seed", range(5))
def test_every_figure_equals_its_library_on_random_votes_with_missing(seed: int):
    rng = np.random.default_rng(seed)
    people, classes = ["ann", "bea", "cal", "dee"], ["x", "y", "z"]
    truth = rng.choice(classes, 60)
    table = {}
    for p in people:
        labels = np.where(rng.random(60) < 0.7, truth, rng.choice(classes, 60)).astype(object)
        labels[rng.random(60) < 0.3] = None  # missing ratings
        table[p] = list(labels)
    result = ag.agreement(_votes(table))
    frame = pd.DataFrame(table, index=[f"r{i}" for i in range(60)])
    for pair in result.cohen.itertuples(index=False):
        both = frame[[pair.rater_a, pair.rater_b]].dropna()
        assert pair.kappa == pytest.approx(cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1]))
    codes = {"x": 0.0, "y": 1.0, "z": 2.0}
    multi = frame[frame.notna().sum(axis=1) >= 2]
    reliability = multi.map(lambda v: np.nan if pd.isna(v) else codes[v]).to_numpy(dtype=float).T
    assert result.krippendorff_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal"))
    counts = multi.notna().sum(axis=1)
    k = result.fleiss.raters_per_item
    assert result.fleiss.n_items == int((counts == k).sum())
    rows = multi[counts == k]
    coded = np.array([[codes[v] for v in r if not pd.isna(v)] for r in rows.itertuples(index=False)])
    assert result.fleiss.kappa == pytest.approx(fleiss_kappa(aggregate_raters(coded)[0]))
    assert result.n_items == len(multi)


def test_krippendorff_documented_example():
    # the krippendorff package's docstring (Krippendorff 2011): alpha nominal = 0.691358
    data = [[np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
            [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
            [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4]]
    table = {f"c{i}": [None if np.isnan(v) else str(int(v)) for v in coder] for i, coder in enumerate(data)}
    assert ag.agreement(_votes(table)).krippendorff_alpha == pytest.approx(0.691358, abs=1e-6)


def test_fleiss_wikipedia_example():
    # Fleiss (1971) as on Wikipedia: 10 items, 14 raters, 5 categories; kappa = 0.210
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    table = {f"p{j:02d}": [] for j in range(14)}
    for item in counts:
        labels = [str(c) for c, n in enumerate(item) for _ in range(n)]
        for j, label in enumerate(labels):
            table[f"p{j:02d}"].append(label)
    result = ag.fleiss(ag.rating_table(_votes(table)))
    assert (result.n_items, result.raters_per_item) == (10, 14)
    assert result.kappa == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_takes_the_most_common_rater_count():
    table = {"a": ["x", "y", "x", "x"], "b": ["x", "y", "y", None], "c": ["x", "x", None, None]}
    result = ag.fleiss(ag.rating_table(_votes(table)))
    assert (result.n_items, result.raters_per_item) == (2, 3)  # r0, r1 by three; r2 by two; r3 by one (dropped)


def test_percent_agreement_counts_pairs_per_row():
    # r0: 3 agree (3/3 pairs); r1: two of three agree (1/3 pairs)
    table = {"a": ["x", "x"], "b": ["x", "x"], "c": ["x", "y"]}
    assert ag.agreement(_votes(table)).percent_agreement == pytest.approx((1 + 1 / 3) / 2)


def test_class_confusion_says_who_says_what_when_another_disagrees():
    table = {"ann": ["cat", "cat", "dog"], "bob": ["cat", "dog", "dog"]}
    conf = ag.class_confusion(ag.rating_table(_votes(table)))
    ann = conf[conf["user"] == "ann"].set_index(["says", "other_says"])["n"].to_dict()
    assert ann == {("cat", "cat"): 1, ("cat", "dog"): 1, ("dog", "dog"): 1}
    matrix = ag.confusion_matrix(conf, ["cat", "dog"])
    assert matrix.loc["cat", "dog"] == matrix.loc["dog", "cat"] == 1
    assert matrix.loc["cat", "cat"] == 2  # both orderings of the agreeing pair


def test_one_person_or_no_shared_rows_says_what_is_needed():
    one = ag.agreement(_votes({"ann": ["x", "y"]}))
    assert one.n_items == 0 and math.isnan(one.percent_agreement)
    assert "One person has labelled so far" in one.sentences()[0]
    apart = ag.agreement(_votes({"ann": ["x", None], "bob": [None, "y"]}))
    assert "no row has labels from two of them" in apart.sentences()[0]
    assert ag.agreement(_votes({})).sentences()[0].startswith("Nobody has labelled")


def test_kappa_is_undefined_when_both_use_one_class():
    result = ag.agreement(_votes({"ann": ["x", "x"], "bob": ["x", "x"]}))
    assert math.isnan(result.cohen.iloc[0].kappa) and math.isnan(result.krippendorff_alpha)
    assert result.to_json()["cohen_kappa"] == {"ann|bob": None}
    assert result.percent_agreement == 1.0


def test_votes_keep_each_persons_latest_decision_and_leave_adjudications_out():
    decisions = pd.DataFrame({
        "id": [1, 2, 3, 4, 5], "row_key": ["7", "7", "7", "8", "7"], "user": ["ann", "bob", "ann", "ann", "bob"],
        "created_at": pd.date_range("2026-01-01", periods=5, tz="UTC"), "action": "override",
        "old_label": None, "new_label": ["x", "y", "z", "x", "z"], "predicted_label": "x", "confidence": 0.9,
        "model_version": 1, "note": "", "kind": ["vote", "vote", "vote", "workshop", "adjudication"],
        "reason": None})
    frame = ag.votes(decisions)
    assert frame.set_index(["row_key", "user"])["label"].to_dict() == {("7", "bob"): "y", ("7", "ann"): "z",
                                                                       ("8", "ann"): "x"}
    matrix = ag.kappa_matrix(ag.agreement(frame).cohen)
    assert matrix.loc["ann", "ann"] == 1.0 and list(matrix.columns) == ["ann", "bob"]


def test_cli_agreement_json_over_rows_with_two_labels(store, wine, wine_schema):
    from hitl_core import actions
    from hitl_core.records import DecisionRequest
    from tests.core.test_cli_db import cli

    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg", retrain_policy="manual")
    keys = [str(k) for k in store.pool_rows(project)[0][:6]]
    a, b = wine_schema.classes[:2]
    for person, labels in {"bob": [a, a, b, b, a, b], "al": [a, a, b, a, a, b], "cy": [a, b, None, None, None, None]}.items():
        actions.record_decisions(store, project.id, person, [DecisionRequest(row_key=k, new_label=label)
                                                             for k, label in zip(keys, labels) if label])
    done = cli("agreement", "--project", str(project.id), "--json", db=store.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_items"] == 6 and result["raters"] == ["al", "bob", "cy"]
    assert list(result["cohen_kappa"]) == ["al|bob", "al|cy", "bob|cy"]
    assert result["cohen_kappa"]["al|bob"] == pytest.approx(cohen_kappa_score([a, a, b, a, a, b], [a, a, b, b, a, b]))
    assert result["percent_agreement"] == pytest.approx((1 + 1 / 3 + 1 + 0 + 1 + 1) / 6)
    assert set(result) >= {"fleiss_kappa", "krippendorff_alpha"}
    words = cli("agreement", "--project", str(project.id), db=store.url)
    assert "On 6 row(s) labelled by two or more people" in words.stdout
