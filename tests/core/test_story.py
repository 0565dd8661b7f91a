"""Sentences say exactly the numbers they are made of, and the overview charts do not exaggerate."""
from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hitl_core import charts, story
from hitl_core.data import Schema
from hitl_core.fairness import fairness_report
from hitl_core.records import ModelVersion


def _version(version: int, test_accuracy: float, *, majority: float = 0.55, human: int = 0) -> ModelVersion:
    return ModelVersion(
        id=version, project_id=1, version=version, model_kind="logreg", n_human_labels=human, n_train=100,
        n_decisions=human, trigger="test", fit_seconds=0.1, created_at=datetime.now(timezone.utc),
        validation={"accuracy": test_accuracy}, test={"accuracy": test_accuracy},
        baselines={"majority": {"test": {"accuracy": majority}}, "random": {"test": {"accuracy": 0.5}}})


SCHEMA = Schema(target="approved", classes=("no", "yes"), numeric=("income", "debt"), categorical=("job",),
                sensitive=("gender",), favourable="yes")


def test_wilson_interval_is_the_textbook_formula():
    correct, n, z = 70, 100, 1.959963984540054
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert story.wilson_interval(correct, n) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_wilson_interval_stays_inside_0_and_1_at_a_perfect_score():
    low, high = story.wilson_interval(20, 20)
    assert 0.8 < low < 1 and high == pytest.approx(1.0)


def test_an_empty_test_set_says_what_is_wrong():
    with pytest.raises(ValueError, match="test set is empty"):
        story.wilson_interval(0, 0)


@pytest.mark.parametrize("accuracy, n", [(0.754, 410), (0.62, 50), (0.97, 1200)])
def test_the_accuracy_sentence_holds_its_interval_around_the_accuracy(accuracy, n):
    result = story.accuracy(_version(3, accuracy), n, majority_class="no")
    assert result.low <= result.accuracy <= result.high
    said = re.search(r"right (\d+)\s% of the time \(95\s% interval (\d+)\s% to (\d+)\s%", result.sentence())
    value, low, high = (int(x) for x in said.groups())
    assert (value, low, high) == tuple(round(100 * x) for x in (result.accuracy, result.low, result.high))
    assert low <= value <= high
    assert f"On {n:,} held-out rows" in result.sentence()


def test_the_verdict_against_the_majority_guess_follows_the_interval():
    assert "clearly better than always answering 'no'" in story.accuracy(_version(1, 0.80), 400,
                                                                        majority_class="no").sentence()
    assert "not clearly different from" in story.accuracy(_version(1, 0.57), 400, majority_class="no").sentence()
    assert "worse than" in story.accuracy(_version(1, 0.40), 400, majority_class="no").sentence()


def _decisions(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"id": i + 1, "row_key": r, "user": u, "new_label": new, "predicted_label": predicted}
                         for i, (r, u, new, predicted) in enumerate(rows)])


def test_review_effect_counts_rows_reviewed_and_changed_by_their_latest_decision():
    decisions = _decisions([("a", "ana", "yes", "no"), ("a", "bob", "no", "no"),  # changed, then put back
                            ("b", "ana", "yes", "no"), ("c", "ana", "no", "no")])
    versions = [_version(1, 0.70), _version(2, 0.78, human=3)]
    effect = story.review_effect(versions, versions[-1], decisions, 400)
    assert (effect.n_reviewed, effect.n_changed, effect.n_people) == (3, 1, 2)
    text = effect.sentence()
    assert text.startswith(f"2 people reviewed 3 predictions and changed 1 ({story.pct(1 / 3)}).")
    assert f"rose from {story.pct(0.7)} (v1) to {story.pct(0.78)} (v2)" in text and "no clear change" not in text


def test_a_change_inside_the_margin_of_error_is_hedged():
    versions = [_version(1, 0.70), _version(2, 0.71, human=5)]
    effect = story.review_effect(versions, versions[-1], _decisions([("a", "ana", "yes", "no")]), 200)
    assert abs(effect.change) < effect.margin
    assert "within the" in effect.sentence() and "no clear change yet" in effect.sentence()


def test_a_rollback_past_the_labels_says_the_current_model_does_not_include_them():
    versions = [_version(1, 0.70), _version(2, 0.75, human=4)]
    text = story.review_effect(versions, versions[0], _decisions([("a", "ana", "yes", "no")]), 400).sentence()
    assert "The current model (v1) does not include their labels: v2, trained on them" in text


def test_the_review_sentence_changes_with_the_numbers():
    versions = [_version(1, 0.70), _version(2, 0.74, human=2)]
    one = story.review_effect(versions, versions[-1], _decisions([("a", "ana", "yes", "no")]), 2000).sentence()
    two = story.review_effect(versions, versions[-1], _decisions([("a", "ana", "yes", "no"),
                                                                  ("b", "ana", "no", "no")]), 2000).sentence()
    assert one != two and "1 prediction and changed 1" in one and "2 predictions and changed 1" in two


def test_no_decisions_say_what_to_do_and_no_retrain_says_so():
    versions = [_version(1, 0.70)]
    assert "Review page" in story.review_effect(versions, versions[0], _decisions([]), 100).sentence()
    waiting = story.review_effect(versions, versions[0], _decisions([("a", "ana", "yes", "no")]), 100).sentence()
    assert "No model has been trained on their labels yet" in waiting


def _gender_report(positive: str) -> object:
    """Men get 'yes' 71 % of the time, women 58 %: a case where the favourable class decides the verdict."""
    rng = np.random.default_rng(0)
    gender = np.array(["men"] * 400 + ["women"] * 400)
    y_pred = np.where(np.r_[rng.random(400) < 0.71, rng.random(400) < 0.58], "yes", "no")
    y_true = np.where(rng.random(800) < 0.6, "yes", "no")
    return fairness_report(y_true, y_pred, sensitive_features=pd.Series(gender, name="gender"),
                           classes=("no", "yes"), positive=positive, sensitive_name="gender")


def test_the_group_named_favoured_really_has_the_higher_share_of_the_favourable_outcome():
    report = _gender_report("yes")
    gap = story.group_gap(report, SCHEMA)
    rates = report.by_group["selection_rate"]
    assert gap.favoured == rates.idxmax() == "men" and gap.least == "women"
    assert gap.ratio == pytest.approx(rates.min() / rates.max())
    text = gap.sentence()
    assert "'approved = yes'" in text
    assert f"{story.pct(rates['men'])} for men, {story.pct(rates['women'])} for women" in text
    assert ("four-fifths rule met" in text) == (gap.ratio >= 0.8)


def test_the_favourable_outcome_flips_who_is_favoured():
    as_no = story.group_gap(_gender_report("no"), replace(SCHEMA, favourable="no"))
    as_yes = story.group_gap(_gender_report("yes"), SCHEMA)
    assert as_no.favoured == as_yes.least and as_no.outcome == "approved = no"


def test_without_a_favourable_outcome_there_is_no_verdict_but_a_next_step():
    unnamed = replace(SCHEMA, favourable=None)
    assert story.group_gap(_gender_report("yes"), unnamed) is None
    assert "choose it on the Data page" in story.fairness_missing(unnamed)
    assert "mark one" in story.fairness_missing(replace(SCHEMA, sensitive=()))


def test_a_ratio_just_under_the_line_is_not_rounded_across_it():
    assert story.ratio_text(0.7996) == "0.800" and story.ratio_text(0.8123) == "0.81"


def test_widest_gap_is_the_lowest_ratio():
    gaps = [story.GroupGap("a", "x = 1", "p", 0.5, "q", 0.45, 0.9, 2),
            story.GroupGap("b", "x = 1", "r", 0.6, "s", 0.3, 0.5, 2), None]
    assert story.widest_gap(gaps).attribute == "b"


def _tidy() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    income, debt = rng.normal(50, 10, 200), rng.normal(5, 2, 200)
    job = rng.choice(["salaried", "unemployed"], 200)
    rows = []
    for i in range(200):
        rows += [{"row": str(i), "feature": "income", "value": income[i], "shap": 0.05 * (income[i] - 50)},
                 {"row": str(i), "feature": "debt", "value": debt[i], "shap": -0.1 * (debt[i] - 5)},
                 {"row": str(i), "feature": "job", "value": job[i], "shap": 0.2 if job[i] == "salaried" else -0.3}]
    return pd.DataFrame(rows)


def test_drivers_in_words_follow_the_sign_of_the_shap_values():
    found = story.drivers(_tidy(), categorical=["job"])
    by_name = {d.feature: d for d in found}
    assert [d.feature for d in found] == list(_tidy().assign(a=lambda t: t["shap"].abs())
                                               .groupby("feature")["a"].mean().sort_values(ascending=False).index)
    assert by_name["income"].direction == "toward" and by_name["debt"].direction == "against"
    assert (by_name["job"].toward, by_name["job"].against) == ("salaried", "unemployed")
    text = story.drivers_sentence(found, "approved = yes", 200)
    assert "higher income pushes toward 'approved = yes'" in text
    assert "higher debt pushes against" in text and "on 200 sampled rows" in text


def test_the_accuracy_chart_starts_at_zero_and_uses_no_verdict_colours():
    now = story.accuracy(_version(2, 0.702, human=3), 400, majority_class="no")
    before = story.accuracy(_version(1, 0.700), 400)
    fig = charts.accuracy_story(now, before)
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= 1
    guess, models = fig.data
    colours = {guess.marker.color, *models.marker.color}
    assert not colours & {"green", "red", "#2ca02c", "#d62728", "crimson"}
    assert list(guess.y) == [0.55] and list(models.y) == [0.700, 0.702] and guess.error_y.array is None
    assert models.error_y.array[-1] == pytest.approx(now.high - now.accuracy)


def test_the_drivers_chart_starts_at_zero_and_escapes_names():
    found = [story.Driver("<b>income</b>", 0.3, "toward"), story.Driver("debt", 0.1, "against")]
    fig = charts.drivers_bar(found, "<script>x</script>")
    assert fig.layout.xaxis.rangemode == "tozero"
    assert "<b>" not in "".join(fig.data[0].y) and "<script>" not in fig.layout.xaxis.title.text
    assert list(fig.data[0].text) == ["higher → against", "higher → toward"]  # weakest first: plotly draws bottom-up
