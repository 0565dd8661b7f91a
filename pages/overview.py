"""Overview: the landing page for viewers, in sentences generated from the current numbers, with the charts behind them."""
from datetime import datetime, timezone

import streamlit as st

from hitl_core import charts, report, story
from hitl_core.models import MODEL_KINDS
from hitl_ui import retrain_line, state
from hitl_ui.text import md_escape

state.through_frame(__file__)

EXPLAIN_ROWS = 200  # a small seeded sample: enough to rank the features, cheap on any model
PROJECTOR = dict(font=dict(size=16), title_font=dict(size=18))  # readable from the back of a room at 1280×720
# Static styles only (no data in them): larger sentences for a projector, less empty space above the title.
st.html("<style>[data-testid='stMain'] [data-testid='stMarkdownContainer'] p{font-size:1.3rem;line-height:1.5}"
        "[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")

project = state.require_project()
st.title(f"Overview: {md_escape(project.name)}")
current = state.current_version(project)
retrain_line.retrain_status(project, current.version)
schema = project.schema
data = state.dataset(project.id, project.dataset_hash)
with st.spinner("Reading the project…"):
    tidy = state.global_sample_with_progress(project, current.version, story.explained_class(schema), EXPLAIN_ROWS)
    card = report.gather(state.store(), project.id, dataset=data, shap_tidy=tidy)
st.caption(f"Model v{current.version} · {MODEL_KINDS.get(current.model_kind, current.model_kind)} · trained "
           f"{current.created_at:%Y-%m-%d %H:%M} UTC · every sentence below is computed from the current numbers.")


def say(text: str) -> None:
    """One generated sentence, as plain text (names in it are user data)."""
    st.markdown(md_escape(text))


def chart(figure, key: str) -> None:
    st.plotly_chart(figure.update_layout(**PROJECTOR), width="stretch", key=key)


st.subheader("What the model gets right", anchor=False)
left, right = st.columns([5, 6], gap="large")
with left:
    if card.accuracy is None:
        say("The held-out test split has no labelled rows, so there is nothing honest to report yet: add labelled "
            "rows on the Data page.")
    else:
        say(card.accuracy.sentence())
    say(card.review.sentence())
if card.accuracy is not None:
    with right:
        chart(charts.accuracy_story(card.accuracy, card.review.before), "overview_accuracy")

st.subheader("Who is favoured", anchor=False)
gaps = [story.group_gap(r, schema) for r in card.fairness]
widest = story.widest_gap(gaps)
left, right = st.columns([5, 6], gap="large")
with left:
    for sentence in report.fairness_sentences(card):
        say(sentence)
    if story.fairness_missing(schema) is None and len(card.fairness) > 1:
        st.caption("The chart shows the attribute with the widest gap; the Fairness page has every attribute.")
if widest is not None:
    with right:
        chart(charts.selection_rates(next(r for r in card.fairness if r.sensitive == widest.attribute)),
              "overview_fairness")

st.subheader("What moves the model", anchor=False)
target = story.outcome(schema) or story.explained_class(schema)
left, right = st.columns([5, 6], gap="large")
with left:
    say(story.drivers_sentence(card.drivers, target, card.n_explained))
if card.drivers:
    with right:
        chart(charts.drivers_bar(card.drivers, target), "overview_drivers")

st.subheader("Goal, safety and cost", anchor=False)
for icon, sentence in ((":material/flag:", report.goal_sentence(card)),
                       (":material/verified_user:", report.checks_sentence(card.checks, card.brief is not None)),
                       (":material/payments:", report.cost_sentence(card))):
    st.markdown(f"{icon} {md_escape(sentence)}")

st.subheader("Take it with you", anchor=False)
stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
name = f"model-card-project{project.id}-v{current.version}-{stamp}"
left, right = st.columns(2)
left.download_button("Model card (HTML, opens offline)", data=lambda: report.to_html(card), file_name=f"{name}.html",
                     mime="text/html", on_click="ignore", icon=":material/download:", key="card_html")
right.download_button("Model card (Markdown)", data=lambda: report.to_markdown(card), file_name=f"{name}.md",
                      mime="text/markdown", on_click="ignore", icon=":material/description:", key="card_md")
st.caption("The card holds this page's sentences with the metrics beside baselines, fairness by group, who labelled, "
           "the safety checks, limitations and the version history. It contains no individual rows.")
