"""Workshop page: the lead puts one row on the shared screen, everyone votes from their own device, the lead reveals.

Three views, chosen by role and address: the shared screen (``?screen=1``, or the lead's toggle), the
lead's controls (roles that may "run workshop") and the voter's phone view (everyone else). Rounds
and votes change only through hitl_core.actions; the tally, agreement and sentence come from
hitl_core.workshop. The live parts are fragments that poll one cheap query every two seconds.
"""
import pandas as pd
import streamlit as st

from hitl_core import actions, users, workshop
from hitl_core.records import Project, Round
from hitl_ui import state
from hitl_ui.text import md_escape

state.through_frame(__file__)

POLL_SECONDS = 2
SCREEN_PARAM = "screen"
QUEUE_ROWS = 10  # rows of the Ask-next queue the lead picks from
QUEUE_STRATEGY = "margin"  # the Review page's default
# static CSS only (no data): big vote buttons and large type, readable on a 390 px phone and from the back of a room
st.html("""<style>
.st-key-workshop_vote button {min-height: 4.5rem;}
.st-key-workshop_vote button p {font-size: 1.8rem; font-weight: 600;}
[class*="st-key-workshop_big"] p {font-size: 1.6rem; line-height: 1.4;}
.st-key-workshop_features [data-testid="stMetricValue"] {font-size: 2.4rem;}
</style>""")

project = state.require_project()
store = state.store()
me = state.user()
lead = users.can(state.role(), "run workshop")


def _screen_changed() -> None:
    if st.session_state["workshop_screen"]:
        st.query_params[SCREEN_PARAM] = "1"
    else:
        st.query_params.pop(SCREEN_PARAM, None)


@st.cache_data(show_spinner=False, max_entries=64)
def row_values(project_id: int, dataset_hash: str, row_key: str) -> pd.Series:
    """The row's feature values (the target stays hidden: it is what the room decides)."""
    data = state.dataset(project_id, dataset_hash)
    return data.features.loc[row_key]


@st.cache_data(show_spinner=False, max_entries=64)
def round_votes(round_id: int, last_vote: int) -> pd.DataFrame:
    """A round's votes, re-read only when the watermark moves (a new or changed vote)."""
    return store.workshop_votes(round_id)


@st.cache_data(show_spinner="Explaining the model's answer…", max_entries=64)
def shap_words(project_id: int, version: int, row_key: str, class_name: str) -> str:
    """SHAP for the row on screen, in words; once per round (the explainer is shared, cached per version)."""
    project_now = store.project(project_id)
    X = state.dataset(project_id, project_now.dataset_hash).features.loc[[row_key]]
    explanation = state.explainers(project_id, version)[0].explain(X, class_name)[0]
    return workshop.explanation_words(explanation.contributions, explanation.feature_values, class_name)


def _act(verb, *args) -> None:
    """Run a workshop action (a button's callback, before the rerun draws the result); a refusal is shown."""
    try:
        verb(store, project.id, me, *args)
    except (actions.ActionError, users.PermissionDenied) as exc:
        st.session_state["workshop_error"] = str(exc)


def _vote(round_id: int, label: str) -> None:
    """Cast this person's vote and remember it for this session's phone view."""
    try:
        actions.cast_vote(store, project.id, me, round_id, label)
    except (actions.ActionError, users.PermissionDenied) as exc:
        st.session_state["workshop_error"] = str(exc)
    else:
        st.session_state[("workshop_my_vote", round_id)] = label


def _show_error() -> None:
    if error := st.session_state.pop("workshop_error", None):
        st.error(error, icon=":material/error:")


def _features(current: Round, project_now: Project) -> None:
    """The row's values in large type: what everyone in the room is deciding about."""
    values = row_values(project_now.id, project_now.dataset_hash, current.row_key)
    with st.container(key="workshop_features"):
        columns = st.columns(2)
        for i, (name, value) in enumerate(values.items()):
            columns[i % 2].metric(str(name), workshop.value_text(value))


@st.fragment(run_every=POLL_SECONDS)
def shared_screen() -> None:
    """The projector: the row, how many have voted, and after the reveal the tally beside the model."""
    current = store.workshop_round(project.id)  # the one query of a poll
    if current is None:
        st.info("No row on the screen yet: the lead opens a round on this page.", icon=":material/co_present:")
        return
    st.markdown(f"## Row {md_escape(current.row_key)} · what should *{md_escape(project.schema.target)}* be?")
    row, outcome = st.columns([2, 3], gap="large")
    with row:
        _features(current, project)
    if not current.revealed:
        outcome.markdown(f"# {current.n_votes} {'vote' if current.n_votes == 1 else 'votes'} so far")
        outcome.caption("Vote on the Workshop page from your phone. The tally and the model's answer appear when the "
                        "lead reveals them." + (" Voting is closed." if not current.is_open else ""))
        return
    votes = round_votes(current.id, current.last_vote)
    result = workshop.Result(workshop.tally(votes, project.schema.classes), workshop.pairwise_agreement(votes),
                             current.predicted_label, current.confidence)
    with outcome:
        st.markdown(f"### {md_escape(result.sentence())}")
        st.markdown(md_escape(result.agreement_sentence()))
        st.plotly_chart(workshop.tally_chart(result), width="stretch", key=f"workshop_tally_{current.id}")
        if current.predicted_label is None:
            st.info("This project has no trained model yet, so there is no answer to compare.")
        else:
            with st.container(key="workshop_big_explanation"):
                st.markdown(md_escape(shap_words(project.id, current.model_version, current.row_key,
                                                 current.predicted_label)))
            st.caption(f"Model v{current.model_version}, confidence {current.confidence:.0%}. SHAP: each feature's "
                       f"push on the score of '{md_escape(current.predicted_label)}'."
                       + (" This round is closed; its votes are stored as labels (kind “workshop”)."
                          if not current.is_open else ""))


@st.fragment(run_every=POLL_SECONDS)
def voter() -> None:
    """The phone: one big button per class, the person's vote, and what they are waiting for."""
    _show_error()
    current = store.workshop_round(project.id)
    if current is None or not current.is_open:
        st.markdown("## Waiting for the lead")
        st.caption("The next row appears here as soon as the lead puts it on the shared screen.")
        return
    remembered = ("workshop_my_vote", current.id)
    if remembered not in st.session_state:  # once per round: then this session knows its own vote
        st.session_state[remembered] = store.workshop_vote(current.id, me)
    mine = st.session_state[remembered]
    st.markdown(f"### Row {md_escape(current.row_key)}: what should *{md_escape(project.schema.target)}* be?")
    with st.container(key="workshop_vote"):
        for label in project.schema.classes:
            chosen = label == mine
            st.button(label, key=f"workshop_vote_{current.id}_{label}", width="stretch",
                      type="primary" if chosen else "secondary", icon=":material/check_circle:" if chosen else None,
                      on_click=_vote, args=(current.id, label))
    with st.container(key="workshop_big_vote"):
        if mine is None:
            st.markdown("Tap your answer. You can change it until the lead closes the round.")
        else:
            st.markdown(f"**Your vote: {md_escape(mine)}**")
            st.markdown("The lead has revealed the tally: look at the shared screen." if current.revealed
                        else "Waiting for the lead to reveal the tally.")
    with st.expander("The row's values"):
        st.dataframe(row_values(project.id, project.dataset_hash, current.row_key).rename("value").astype(str),
                     width="stretch")


@st.fragment(run_every=POLL_SECONDS)
def round_controls() -> None:
    """The lead's live line: the round on screen, votes so far, reveal and close."""
    _show_error()
    current = store.workshop_round(project.id)
    if current is None:
        st.info("No round yet: pick a row below and open it.", icon=":material/info:")
        return
    status = {"voting": "voting (tally hidden)", "revealed": "revealed (voting still open)",
              "closed": "closed"}[current.status]
    st.markdown(f"**Round #{current.id}** · row {md_escape(current.row_key)} · {status} · "
                f"**{current.n_votes}** {'vote' if current.n_votes == 1 else 'votes'}")
    reveal, close = st.columns(2)
    reveal.button("Reveal the tally and the model", icon=":material/visibility:", width="stretch",
                  disabled=current.revealed or not current.is_open, key="workshop_reveal",
                  on_click=_act, args=(actions.reveal_round, current.id))
    close.button("Close the round", icon=":material/lock:", width="stretch", disabled=not current.is_open,
                 key="workshop_close", on_click=_act, args=(actions.close_round, current.id))


def lead_controls() -> None:
    """Pick the next row (from the Ask-next queue or by key) and run the round."""
    round_controls()
    st.subheader("Put a row on the screen")
    current = store.workshop_round(project.id)
    version = store.current_version(project.id)
    queue: list[str] = []
    if version is not None:
        ranked, _ = state.ranked_pool(project.id, version.version, store.last_decision_id(project.id),
                                      QUEUE_STRATEGY, QUEUE_ROWS + 1)
        queue = [str(k) for k in ranked[ranked["in_batch"].fillna(False).astype(bool)].sort_values("rank").index
                 if current is None or str(k) != current.row_key][:QUEUE_ROWS]
    pick, by_key = st.columns(2)
    chosen = pick.selectbox("From the Ask-next queue (smallest margin first)", queue, key="workshop_queue_pick",
                            placeholder="The queue is empty: every pool row is labelled" if not queue else None,
                            help="The rows the model is least sure about; opening one closes the round on screen.")
    typed = by_key.text_input("Or a row key", key="workshop_row_key", placeholder="as on the Review page").strip()
    row_key = typed or chosen
    first, nxt = st.columns(2)
    first.button(f"Open row {row_key}" if row_key else "Open a row", type="primary", width="stretch",
                 disabled=not row_key, icon=":material/co_present:", key="workshop_open",
                 on_click=_act, args=(actions.open_round, row_key))
    nxt.button("Next: close this round and open the next queue row", width="stretch", disabled=not queue,
               icon=":material/skip_next:", key="workshop_next", on_click=_act,
               args=(actions.open_round, queue[0] if queue else None))
    st.caption("Only rows of the review pool can be put to the room: the votes are stored as each person's label "
               "(kind “workshop”), count in consensus and on the Team page, and train the model after the round "
               "closes if the retrain policy says so.")


def screen_toggle() -> None:
    """Leads switch this session to the shared screen and back (the address keeps it: ``?screen=1``)."""
    st.toggle("Shared screen (for the projector)", key="workshop_screen", on_change=_screen_changed,
              value=st.query_params.get(SCREEN_PARAM) == "1")


on_screen = st.query_params.get(SCREEN_PARAM) == "1"
if not on_screen:
    st.title("Workshop")
if on_screen:
    # the projector shows the room's question, nothing else: no sidebar, little margin (static CSS, no data)
    st.html("""<style>[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] {display: none;}
    [data-testid="stMainBlockContainer"] {padding-top: 1.5rem;}</style>""")
    shared_screen()
    if lead:
        st.divider()
        screen_toggle()
elif lead:
    screen_toggle()
    st.caption("Put this page on the projector with the toggle (or open it with `?screen=1`); everyone else opens "
               "the Workshop page on their phone to vote.")
    lead_controls()
    st.divider()
    st.markdown("**Your own vote**")
    voter()
elif users.can(state.role(), "vote"):
    voter()
else:
    st.info("Sign in to vote in the workshop.", icon=":material/login:")
