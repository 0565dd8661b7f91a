"""Streamlit glue shared by the pages: the cached store, the current project and user, cached frames.

Session state only remembers *which* project and user; everything else is read from the database
(and cached by content: project id + model version + number of decisions).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from hitl_core import actions, active, consensus, jobs, loop, users
from hitl_core.config import Settings
from hitl_core.data import Dataset, check
from hitl_core.explain import (
    PROBE_ROWS, Explanation, GlobalBudget, LimeExplainer, ShapExplainer, exact_budget, global_shap,
)
from hitl_core.model_files import UntrustedModel
from hitl_core.models import FittedModel
from hitl_core.records import ModelVersion, Project
from hitl_core.samples import load_sample
from hitl_core.store import Store

DEFAULT_USER = "local"
DEMO_SAMPLE = "loan"
FRAME_KEY = "_frame_ran"
DEEP_LINK_KEY = "_deep_link"


@st.cache_resource
def settings() -> Settings:
    """Environment variables win; ``[hitl]`` in ``.streamlit/secrets.toml`` fills in the rest."""
    try:
        secrets = {k.upper(): str(v) for k, v in st.secrets.get("hitl", {}).items()}
    except FileNotFoundError:
        secrets = {}
    return Settings.from_env({**secrets, **os.environ})


@st.cache_resource
def store() -> Store:
    """One engine per server process: thread-safe and shared by every session."""
    return Store(settings().database_url)


USER_PARAM = "user"
PROJECT_PARAM = "project"


SIGNED_IN_KEY = "signed_in"


def accounts_on() -> bool:
    """Local mode (no account in the database) has no login; one account switches sign-in on."""
    return store().has_users()


def oidc_configured() -> bool:
    """``[auth]`` in ``.streamlit/secrets.toml`` turns on "Sign in with …" through ``st.login``."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def signed_in() -> str | None:
    """The account this session signed in as (password or OIDC), if it still exists."""
    name = st.session_state.get(SIGNED_IN_KEY)
    if name is None and oidc_configured() and st.user.get("is_logged_in", False):
        name = st.user.get("email") or st.user.get("name")
    return name if name and store().user_role(name) is not None else None


def user() -> str:
    """Who is acting: the signed-in account; in local mode this session's name, else the URL's, else ``local``."""
    if accounts_on():
        return signed_in() or ""
    if "user" not in st.session_state and (remembered := st.query_params.get(USER_PARAM, "").strip()):
        st.session_state["user"] = remembered[: actions.MAX_ACTOR]
    return st.session_state.get("user") or DEFAULT_USER


def role() -> str | None:
    """The acting person's role ("admin" in local mode, None when nobody is signed in): pages hide what it may not do."""
    if not accounts_on():
        return users.LOCAL_ROLE
    name = signed_in()
    return None if name is None else store().user_role(name)


def pii_role() -> str | None:
    """The role that decides whether personal data is shown: only a signed-in admin sees it (local mode has
    no verified person, so it shows none)."""
    return role() if accounts_on() else None


def sign_in(name: str, password: str) -> bool:
    """Check a password against the stored argon2 hash; on success this session acts as that account."""
    name = name.strip()
    if users.verify_password(store().password_hash(name), password):
        st.session_state[SIGNED_IN_KEY] = name
        return True
    return False


def sign_out() -> None:
    st.session_state.pop(SIGNED_IN_KEY, None)
    if oidc_configured() and st.user.get("is_logged_in", False):
        st.logout()


def remember_user() -> None:
    """Keep the sidebar name in the session (page switches) and in the URL (reloads)."""
    name = st.session_state["user_input"].strip()[: actions.MAX_ACTOR] or DEFAULT_USER
    st.session_state["user"] = name
    st.query_params[USER_PARAM] = name


def ensure_demo_project() -> None:
    """On a fresh database, create the loan demo project so the app opens on something real."""
    if store().projects() or not users.can(role(), "create project"):  # pages say an admin creates one
        return
    with st.status("First start: creating the demo project (loan sample) and training its first model…",
                   expanded=False) as status:
        sample = load_sample(DEMO_SAMPLE)
        schema, _ = check(sample.frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive,
                          pii=sample.pii, favourable=sample.favourable)
        actions.create_project(store(), user(), name=sample.title, source=f"sample:{sample.name}",
                               frame=sample.frame, schema=schema, model_kind="logreg", threads=settings().threads)
        status.update(label="Demo project ready", state="complete")


def current_project(projects: list[Project] | None = None) -> Project | None:
    """The project in the URL (``?project=ID``: reloads and shared links land on it), else this session's, else
    the newest one."""
    projects = store().projects() if projects is None else projects
    if not projects:
        return None
    # a page switch starts from a bare address: then this session's last project, before the newest
    wanted = st.query_params.get(PROJECT_PARAM) or st.session_state.get(PROJECT_PARAM, "")
    return next((p for p in projects if str(p.id) == wanted), projects[-1])


def select_project(project_id: int) -> None:
    """Put the project (and a chosen name) in the URL, where every page and the next reload read them.

    Called by the frame on every run, because switching pages starts from a bare page address.
    """
    st.session_state[PROJECT_PARAM] = str(project_id)
    if st.query_params.get(PROJECT_PARAM) != str(project_id):
        st.query_params[PROJECT_PARAM] = str(project_id)
    if not accounts_on() and user() != DEFAULT_USER and st.query_params.get(USER_PARAM) != user():
        st.query_params[USER_PARAM] = user()


PICKER_KEY = "project_picker"


def _pick_project() -> None:
    select_project(st.session_state[PICKER_KEY])


def project_picker(projects: list[Project]) -> None:
    """The sidebar's project choice: the URL is the truth, the widget follows it and writes it back."""
    if not projects:
        return
    names = {p.id: p.name for p in projects}
    current = current_project(projects)
    st.session_state[PICKER_KEY] = current.id  # a link or reload wins over the widget's remembered value
    st.selectbox("Project", list(names), key=PICKER_KEY, on_change=_pick_project,
                 format_func=lambda i: f"#{i} · {names[i]}",
                 help="Every page shows the selected project; decisions are stored per project.")
    select_project(current.id)


def current_version(project: Project) -> ModelVersion:
    """The version the project points at: the one model every page shows."""
    version = store().current_version(project.id)
    if version is None:
        st.error("This project has no trained model yet. Create it again from the Data page.",
                 icon=":material/error:")
        st.stop()
    return version


@st.cache_data(show_spinner=False, max_entries=4)
def dataset(project_id: int, dataset_hash: str) -> Dataset:
    return store().load_dataset(store().project(project_id))


@st.cache_resource(show_spinner=False, max_entries=8)
def _stored_model(project_id: int, version: int) -> FittedModel:
    """A fitted model is read-only once stored, so one copy serves every session."""
    return store().load_model(project_id, version)


def model(project_id: int, version: int) -> FittedModel:
    """The stored model, or (stopping the page) the reason it was refused: tampered or untrusted bytes."""
    try:
        return _stored_model(project_id, version)
    except UntrustedModel as exc:
        st.error(f"{exc}", icon=":material/gpp_bad:")
        st.stop()


def forget_models() -> None:
    """Drop every cached model and explainer: after a withdrawal, dropped versions must not be served from memory."""
    _stored_model.clear()
    explainers.clear()


def scored_pool(project_id: int, version: int) -> pd.DataFrame:
    """Predictions of one version on the pool with the given labels and the feature columns: once per version
    and dataset (a batch of new rows changes the project's dataset hash, so its rows are scored at once)."""
    return _scored_pool(project_id, version, store().project(project_id).dataset_hash)


@st.cache_data(show_spinner="Scoring the review pool…", max_entries=4)
def _scored_pool(project_id: int, version: int, dataset_hash: str) -> pd.DataFrame:
    data = dataset(project_id, dataset_hash)
    scored = loop.score_pool(model(project_id, version), data, threads=settings().threads)
    return scored.join(data.frame.loc[scored.index, list(data.schema.features)])


def pool(project_id: int, version: int, last_decision_id: int) -> pd.DataFrame:
    """Predictions of ``version`` on the pool, beside effective labels up to decision ``last_decision_id``.

    Re-read per decision and per dataset (new batch), but only the labels: the scores come from :func:`scored_pool`.
    """
    return _pool(project_id, version, last_decision_id, store().project(project_id).dataset_hash)


@st.cache_data(show_spinner=False, max_entries=8)
def _pool(project_id: int, version: int, last_decision_id: int, dataset_hash: str) -> pd.DataFrame:
    return loop.with_labels(_scored_pool(project_id, version, dataset_hash),
                            store().decisions(project_id, up_to=last_decision_id))


def retrain_here_with_status(project: Project) -> None:
    """Retrain in this server process (no worker is running), showing progress; the page then reruns."""
    with st.status(f"Retraining {project.model_kind} on the effective labels…", expanded=False) as status:
        version = jobs.run_now(store(), project.id, user(), threads=settings().threads)
        if version is None:
            status.update(label="Another process is already training this project; its version will appear here.",
                          state="complete")
        else:
            status.update(label=f"Model version {version.version} stored ({version.status}; validation accuracy "
                                f"{version.validation['accuracy']:.3f})", state="complete")


@st.cache_resource(show_spinner="Preparing the explainers…", max_entries=4)
def explainers(project_id: int, version: int) -> tuple[ShapExplainer, LimeExplainer]:
    """Fitted SHAP and LIME explainers of one model version, built once and shared read-only."""
    project = store().project(project_id)
    data = dataset(project_id, project.dataset_hash)
    background = data.features.loc[data.rows("train")]
    fitted = model(project_id, version)
    return (ShapExplainer(fitted, data.schema, background, seed=project.seed),
            LimeExplainer(fitted, data.schema, background, seed=project.seed))


@st.cache_data(show_spinner="Explaining this row…", max_entries=512)
def explain_row(project_id: int, version: int, row_key: str, class_name: str) -> tuple[Explanation, Explanation]:
    """SHAP and LIME for one row of the dataset, cached per (project, model version, row, class)."""
    project = store().project(project_id)
    X = dataset(project_id, project.dataset_hash).features.loc[[row_key]]
    shap_explainer, lime_explainer = explainers(project_id, version)
    return shap_explainer.explain(X, class_name)[0], lime_explainer.explain(X, class_name)[0]


GLOBAL_CHUNK = 100


def explain_sample(project: Project, n_rows: int) -> pd.Index:
    """A seeded sample of the training pool for global explanations (same rows for every version)."""
    pool_rows = dataset(project.id, project.dataset_hash).rows("train")
    return pd.Index(pd.Series(pool_rows).sample(min(n_rows, len(pool_rows)), random_state=project.seed))


@st.cache_data(show_spinner="Measuring what exact SHAP costs for this model…", max_entries=16)
def global_budget(project_id: int, version: int, most: int) -> GlobalBudget:
    """Rows of exact global SHAP that fit the page's time budget, measured once per model version."""
    project = store().project(project_id)
    probe = dataset(project_id, project.dataset_hash).features.loc[explain_sample(project, PROBE_ROWS)]
    return exact_budget(explainers(project_id, version)[0], probe, most=most)


@st.cache_data(show_spinner=False, max_entries=200)
def global_chunk(project_id: int, version: int, class_name: str, n_rows: int, chunk: int, *,
                 approximate: bool = False) -> pd.DataFrame:
    """Tidy SHAP values of one chunk of the global sample (exact unless ``approximate``); chunks show progress."""
    project = store().project(project_id)
    rows = explain_sample(project, n_rows)[chunk * GLOBAL_CHUNK:(chunk + 1) * GLOBAL_CHUNK]
    X = dataset(project_id, project.dataset_hash).features.loc[rows]
    shap_explainer, _ = explainers(project_id, version)
    return global_shap(shap_explainer, X, class_name, approximate=approximate)


def global_sample_with_progress(project: Project, version: int, class_name: str, n_rows: int, *,
                                approximate: bool = False) -> pd.DataFrame:
    """Tidy SHAP values of the seeded global sample, chunk by chunk under a progress bar (cached per chunk).

    Exact unless ``approximate``: size ``n_rows`` with :func:`global_budget` (a forest costs ~15-90 ms a row).
    """
    pool_size = len(dataset(project.id, project.dataset_hash).rows("train"))
    chunks = max(1, math.ceil(min(n_rows, pool_size) / GLOBAL_CHUNK))
    kind = "approximate SHAP values" if approximate else "SHAP values"
    progress = st.progress(0.0, text=f"Computing {kind}…")
    parts = []
    for chunk in range(chunks):
        parts.append(global_chunk(project.id, version, class_name, int(n_rows), chunk, approximate=approximate))
        progress.progress((chunk + 1) / chunks,
                          text=f"Computing {kind}… {min((chunk + 1) * GLOBAL_CHUNK, n_rows):,} rows")
    progress.empty()
    return pd.concat(parts, ignore_index=True)


def through_frame(page_file: str) -> None:
    """Send a page that runs without app.py back through it, keeping the page as the destination.

    A deep link opened in a new browser session (e.g. a bookmarked /review) makes Streamlit run
    the page script directly, found through the ``pages/`` folder, without the frame's sidebar,
    navigation and demo set-up.
    """
    if not st.session_state.get(FRAME_KEY):
        st.session_state[DEEP_LINK_KEY] = f"pages/{Path(page_file).name}"
        st.switch_page("app.py", query_params=st.query_params.to_dict())  # a switch clears the link's query


def mark_frame_and_follow_deep_link() -> None:
    """Called by app.py after st.navigation: this session now runs through the frame."""
    st.session_state[FRAME_KEY] = True
    if link := st.session_state.pop(DEEP_LINK_KEY, None):
        st.switch_page(link, query_params=st.query_params.to_dict())


def ranked_pool(project_id: int, version: int, last_decision_id: int, strategy: str,
                batch_size: int) -> tuple[pd.DataFrame, str]:
    """The unlabeled pool ordered by a query strategy (rank, score, in_batch, reason) and why, per model version
    and dataset (rows of a new batch enter the queue at once) and overlap (rows stay queued until enough people
    have labelled them)."""
    project = store().project(project_id)
    return _ranked_pool(project_id, version, last_decision_id, strategy, batch_size, project.dataset_hash,
                        project.overlap)


@st.cache_data(show_spinner="Ranking the pool…", max_entries=16)
def _ranked_pool(project_id: int, version: int, last_decision_id: int, strategy: str, batch_size: int,
                 dataset_hash: str, overlap: int) -> tuple[pd.DataFrame, str]:
    project = store().project(project_id)
    frame = _pool(project_id, version, last_decision_id, dataset_hash)
    features = None
    if strategy in active.NEEDS_FEATURES:
        features = active.embed(model(project_id, version), frame[list(project.schema.features)],
                                threads=settings().threads)
    labels = frame["label"]
    if overlap > 1:  # a row stays in the queue until enough people have labelled it
        votes = row_consensus(project_id, last_decision_id)
        short = votes.index[(votes["n_votes"] < overlap) & votes["adjudicated"].isna()]
        labels = labels.where(~labels.index.isin(short))
    ranked = active.rank_pool(strategy, frame[[f"p({c})" for c in project.schema.classes]], labels=labels,
                              features=features, batch_size=batch_size, seed=project.seed, threads=settings().threads)
    return ranked, str(ranked.attrs.get("reason", ""))


@st.cache_data(show_spinner=False, max_entries=16)
def row_consensus(project_id: int, last_decision_id: int) -> pd.DataFrame:
    """Votes, majority and disputes per row up to a decision id: one read of the decisions per new decision."""
    return consensus.row_consensus(store().decisions(project_id, up_to=last_decision_id))


@st.cache_data(show_spinner=False, max_entries=16)
def _answered(project_id: int, person: str, last_decision_id: int) -> frozenset[str]:
    """Rows this person has decided on, up to a decision id (cached per new decision)."""
    decisions = store().decisions(project_id, up_to=last_decision_id)
    return frozenset(decisions.loc[decisions["user"] == person, "row_key"].astype(str))


def mix_gold(project: Project, ranked: pd.DataFrame, last_decision_id: int) -> pd.DataFrame:
    """The ranked batch with the project's gold rows this person has not answered mixed in at the gold rate, unmarked."""
    rate = store().gold_rate(project.id)
    if rate <= 0:
        return ranked
    answered = _answered(project.id, user(), last_decision_id)
    gold = [k for k in store().gold(project.id).index if k not in answered]
    return active.mix_gold(ranked, gold, rate, seed=[project.seed, last_decision_id])


@st.cache_data(show_spinner=False, max_entries=32)
def triage(project_id: int, version: int, human_accuracy: float) -> pd.DataFrame:
    """Share sent to a person and people + model accuracy on validation, for every confidence threshold."""
    project = store().project(project_id)
    return active.validation_triage(model(project_id, version), dataset(project_id, project.dataset_hash),
                                    human_accuracy=human_accuracy, threads=settings().threads)


def require_project() -> Project:
    """The current project, or (stopping the page) an empty state that points to the Data page."""
    project = current_project()
    if project is None:
        st.info("No project yet: start one on the Data page.", icon=":material/info:")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/table_chart:")
        st.stop()
    return project
