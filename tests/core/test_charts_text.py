"""Charts show user strings as plain text: a class, column, group or value spelled as HTML reads as typed.

plotly.js renders a subset of HTML (``<a href>``, ``<b>``, ``<br>``, ``<span style>``) in titles, tick
labels, legend names, bar and hover text, annotations and values substituted through ``%{...}``; a
column named ``<a href="...">x</a>`` would otherwise become a live link in the chart.
"""
from __future__ import annotations

import html
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from hitl_core import charts, story
from hitl_core.explain import Explanation
from hitl_core.fairness import fairness_report, human_fairness

LINK = '<a href="http://evil.example">yes</a>'
BOLD = "<b>no</b>"
CLASSES = (BOLD, LINK)  # binary: the last class is the positive one
FEATURE = '<a href="http://evil.example">income</a>'
OTHER = '<span style="color:red">age</span>'
VALUE = '<a href="http://evil.example">salaried</a>'
GROUPS = ('<a href="http://evil.example">north</a>', "<i>south</i>")
SENSITIVE = '<b href="http://evil.example">region</b>'
MODEL = '<a href="http://evil.example">model</a>'
ROW = '<a href="http://evil.example">row-1</a>'


def _explanation(method: str) -> Explanation:
    features = [FEATURE, OTHER, "plain"]
    return Explanation(method=method, row=ROW, class_name=LINK, base_value=0.1, output=0.7,
                       output_space="probability",
                       contributions=pd.Series([0.4, -0.2, 0.05], index=features),
                       feature_values=pd.Series([VALUE, 41, 12_700.0], index=features, dtype=object))


def _tidy() -> pd.DataFrame:
    """The shape of :func:`hitl_core.explain.global_shap`: row, feature, shap, value."""
    rows = [ROW, "r2", "r3", "r4"]
    return pd.DataFrame({
        "row": rows * 2,
        "feature": [FEATURE] * 4 + [OTHER] * 4,
        "shap": [0.3, -0.1, 0.2, 0.0, 0.1, -0.2, 0.05, 0.0],
        "value": [VALUE, "<b>hourly</b>", VALUE, "<b>hourly</b>", 20, 35, 50, 65],
    }, columns=["row", "feature", "shap", "value"])


def _report():
    rng = np.random.default_rng(0)
    n = 80
    y_true = rng.choice(CLASSES, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice(CLASSES, n))
    groups = pd.Series(rng.choice(GROUPS, n), name=SENSITIVE)
    return fairness_report(y_true, y_pred, sensitive_features=groups, classes=CLASSES, min_group_size=5,
                           confidence=rng.uniform(0.5, 1.0, n))


def _human():
    n = 40
    keys = [f"k{i}" for i in range(n)]
    rng = np.random.default_rng(1)
    predicted = rng.choice(CLASSES, n)
    new = np.where(rng.random(n) < 0.6, predicted, rng.choice(CLASSES, n))
    decisions = pd.DataFrame({"row_key": keys, "action": np.where(new == predicted, "accept", "override"),
                              "old_label": [None] * n, "new_label": new, "predicted_label": predicted})
    groups = pd.Series([GROUPS[i % 2] for i in range(n)], index=keys, name=SENSITIVE)
    human = human_fairness(decisions, groups, classes=CLASSES, min_group_size=5)
    assert human is not None
    return human


def _pool() -> pd.DataFrame:
    return pd.DataFrame({"confidence": [0.55, 0.9, 0.7, 0.62], "predicted": [LINK, BOLD, LINK, BOLD]})


def _row() -> pd.Series:
    return pd.Series({f"p({BOLD})": 0.3, f"p({LINK})": 0.7, "predicted": LINK})


def _comparison() -> pd.DataFrame:
    return pd.DataFrame({MODEL: [0.8, 0.7], "majority": [0.5, 0.33], "random": [0.5, 0.5]},
                        index=["accuracy", "f1_macro"])


def _mitigation() -> pd.DataFrame:
    return pd.DataFrame({"accuracy": [0.8, 0.78], "demographic_parity_difference": [0.2, 0.05],
                         "equalized_odds_difference": [0.25, 0.1]}, index=pd.Index([MODEL, f"mitigated {BOLD}"],
                                                                                   name="model"))


def _curves() -> go.Figure:
    strategies = {"random": {"curve": [[10, 0.6], [20, 0.7]], "curve_std": [[10, 0.02], [20, 0.03]], "repeats": 2},
                  "margin": {"curve": [[10, 0.62], [20, 0.78]]}}
    return charts.learning_curves(strategies, reference=0.8, baseline=0.5,
                                  names={"random": LINK, "margin": BOLD})


BUILDERS: dict[str, Callable[[], go.Figure]] = {
    "confidence_histogram": lambda: charts.confidence_histogram(_pool(), 0.6),
    "class_probabilities": lambda: charts.class_probabilities(_row(), CLASSES),
    "metrics_vs_baselines": lambda: charts.metrics_vs_baselines(_comparison()),
    "confusion_heatmap": lambda: charts.confusion_heatmap({LINK: {LINK: 5, BOLD: 1}, BOLD: {LINK: 2, BOLD: 7}}),
    "shap_waterfall": lambda: charts.shap_waterfall(_explanation("shap")),
    "shap_waterfall_rest": lambda: charts.shap_waterfall(_explanation("shap"), max_features=1),
    "lime_weights": lambda: charts.lime_weights(_explanation("lime")),
    "importance_bar": lambda: charts.importance_bar(pd.Series({FEATURE: 0.3, OTHER: 0.1})),
    "beeswarm": lambda: charts.beeswarm(_tidy(), [FEATURE, OTHER]),
    "dependence_categorical": lambda: charts.dependence(_tidy(), FEATURE),
    "dependence_numeric": lambda: charts.dependence(_tidy().replace({OTHER: FEATURE}).iloc[4:], FEATURE),
    "learning_curves": _curves,
    "selection_rates": lambda: charts.selection_rates(_report()),
    "group_rates": lambda: charts.group_rates(_report()),
    "human_rates": lambda: charts.human_rates(_human()),
    "mitigation_tradeoff": lambda: charts.mitigation_tradeoff(_mitigation()),
    "accuracy_story": lambda: charts.accuracy_story(
        story.Accuracy(version=2, accuracy=0.7, low=0.65, high=0.75, n=400, majority=0.55, majority_class=LINK)),
    "drivers_bar": lambda: charts.drivers_bar([story.Driver(FEATURE, 0.3, "toward"),
                                               story.Driver(OTHER, 0.1, "mixed", toward=VALUE, against=BOLD)], LINK),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_user_strings_reach_the_figure_escaped_never_as_markup(name: str) -> None:
    text = BUILDERS[name]().to_json()
    for markup in ("<a href", "<b>", "<b href", "<i>", "<span"):
        assert markup not in text, f"{name}: unescaped {markup!r} in the figure"
    assert "&lt;a href" in text or "&lt;b" in text, f"{name}: the user string is missing from the figure"


def test_the_escaped_text_reads_as_typed_and_our_own_markup_still_works() -> None:
    probs = charts.class_probabilities(_row(), CLASSES)
    assert [html.unescape(c) for c in probs.data[0].y] == list(CLASSES)
    assert list(probs.data[0].marker.color) == ["#1f77b4", "#ff7f0e"]  # the predicted class is still found

    selection = charts.selection_rates(_report())
    assert all("<br>" in h for h in selection.data[0].hovertext)  # our line break stays a line break
    assert [html.unescape(g) for g in selection.data[0].x] == list(_report().by_group.index)

    swarm = charts.beeswarm(_tidy(), [FEATURE, OTHER])
    assert "<br>" in swarm.data[0].hovertemplate
    assert {html.unescape(f) for f in swarm.layout.yaxis.ticktext} == {FEATURE, OTHER}

    ampersand = charts.importance_bar(pd.Series({"R&D &lt;spend&gt;": 1.0}))
    assert html.unescape(ampersand.data[0].y[0]) == "R&D &lt;spend&gt;"  # already-escaped text is not decoded


def test_the_title_names_the_class_as_typed() -> None:
    title = json.loads(charts.shap_waterfall(_explanation("shap")).to_json())["layout"]["title"]["text"]
    assert html.unescape(title).startswith(f"SHAP for '{LINK}'")
