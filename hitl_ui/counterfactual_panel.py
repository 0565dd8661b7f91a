"""The counterfactual panel beside a row's SHAP/LIME explanation: what would have to change for another outcome.

Computed counterfactuals are cached with ``st.cache_data`` per (project, model version, row, settings): the
search is seeded, so the same key gives the same answer after a restart (1-3 s to rebuild), and writing a
cache row to the database on every look at a row would take the project's write lock on a read path. What
people *save* (a DiCE suggestion or their own what-if) goes to the ``counterfactuals`` table through
:func:`hitl_core.actions.save_counterfactual`, with who and which version.
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hitl_core import actions, counterfactual, users
from hitl_core.counterfactual import CounterfactualExplainer, Recourse, RecourseSettings
from hitl_core.models import predict_with_confidence
from hitl_core.records import ModelVersion, Project
from hitl_ui import review_panel, state  # review_panel imports this module's caller: module import, not from-import
from hitl_ui.text import md_escape

SETTINGS = "cf_settings"  # (project, version, row) → the RecourseSettings last asked for, so results survive reruns
FLASH = "cf_flash"  # (project, row, source) → (kind, text) said once after a save, where it was clicked


@st.cache_resource(show_spinner="Preparing the counterfactual search…", max_entries=4)
def explainer(project_id: int, version: int) -> CounterfactualExplainer:
    """DiCE over one stored model and the project's training pool; read-only, searches run one at a time."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    return CounterfactualExplainer(state.model(project_id, version), data.schema,
                                   data.features.loc[data.rows("train")])


@st.cache_data(show_spinner=False, max_entries=256)
def recourse(project_id: int, version: int, row_key: str, settings_json: str) -> Recourse:
    """Checked counterfactuals of one row, cached per (project, model version, row, settings as JSON)."""
    project = state.store().project(project_id)
    row = state.dataset(project_id, project.dataset_hash).features.loc[[row_key]]
    return explainer(project_id, version).explain(row, RecourseSettings.from_json(settings_json))


def changes_frame(cf: counterfactual.Counterfactual) -> pd.DataFrame:
    """A counterfactual's changes as text a person reads: feature, from, to."""
    shown = review_panel.human_value
    return pd.DataFrame([(c, shown(a), shown(b)) for c, (a, b) in cf.changes.items()],
                        columns=["feature", "from", "to"])


def saved_frame(saved: pd.DataFrame) -> pd.DataFrame:
    """Saved counterfactuals of a row, newest first: who, model, from where, what changes, the outcome then."""
    rows, shown = [], review_panel.human_value
    for _, item in saved.sort_values("id", ascending=False).iterrows():
        result = json.loads(item["result_json"])
        changes = "; ".join(f"{c}: {shown(a)} → {shown(b)}" for c, (a, b) in result["changes"].items())
        rows.append({"who": item["created_by"], "model": f"v{int(item['model_version'])}", "source": item["source"],
                     "changes": changes, "outcome": f"{result['was']} → {result['predicted']} "
                                                    f"({result['confidence']:.2f})", "note": item["note"]})
    return pd.DataFrame(rows, columns=["who", "model", "source", "changes", "outcome", "note"])


def panel(project: Project, version: ModelVersion, row_key: str, predicted: str) -> None:
    """Ask DiCE for changes that give another class, show the checked ones, and let a reviewer keep one."""
    with st.container(border=True):  # not an expander: the search's st.status is one, and they cannot nest
        st.markdown(":material/alt_route: **What would change the outcome? Counterfactuals**")
        say_flash(project.id, row_key, "dice")
        settings = _settings_form(project, version, row_key, predicted)
        if settings is not None:
            _results(project, version, row_key, settings)
        _saved(project, row_key)


def _settings_form(project: Project, version: ModelVersion, row_key: str, predicted: str) -> RecourseSettings | None:
    """Desired class, how many, immutable features and allowed ranges; returns the settings last asked for."""
    schema = project.schema
    data = state.dataset(project.id, project.dataset_hash)
    scope = f"{row_key}_v{version.version}"
    others = [c for c in schema.classes if c != predicted]
    row = data.features.loc[[row_key]]
    proba = predict_with_confidence(state.model(project.id, version.version), row, schema.classes).proba[0]
    default = counterfactual.default_desired(schema, schema.classes, proba, predicted)
    train = data.features.loc[data.rows("train")]
    with st.form(f"cf_form_{scope}"):
        st.caption(f"Changes to this row that make model v{version.version} predict another class, found by DiCE "
                   "and each checked against the model. Sensitive and age-like features stay fixed by default.")
        left, middle = st.columns([2, 1])
        desired = left.selectbox("Aim for class", others, index=others.index(default), key=f"cf_desired_{scope}",
                                 format_func=md_escape)
        count = middle.number_input("How many", 1, counterfactual.MAX_COUNT, counterfactual.DEFAULT_COUNT,
                                    key=f"cf_count_{scope}")
        immutable = st.multiselect("Must not change", schema.features,
                                   default=list(counterfactual.default_immutable(schema)),
                                   key=f"cf_immutable_{scope}", format_func=md_escape,
                                   help="Features a person cannot or must not be asked to change.")
        ranges = []
        with st.expander("Allowed ranges of numeric features"):
            for feature in schema.numeric:
                values = train[feature].dropna().astype(float)
                if values.empty or values.min() == values.max():
                    continue
                low, high = float(values.min()), float(values.max())
                chosen = st.slider(md_escape(feature), low, high, (low, high), key=f"cf_range_{scope}_{feature}")
                if chosen != (low, high):
                    ranges.append((feature, float(chosen[0]), float(chosen[1])))
        asked = st.form_submit_button("Find counterfactuals", icon=":material/search:")
    remembered = st.session_state.setdefault(SETTINGS, {})
    if asked:
        remembered[(project.id, version.version, row_key)] = RecourseSettings(
            desired=desired, count=int(count), immutable=tuple(immutable), ranges=tuple(ranges), seed=project.seed)
    return remembered.get((project.id, version.version, row_key))


def _results(project: Project, version: ModelVersion, row_key: str, settings: RecourseSettings) -> None:
    """The checked counterfactuals (with progress while DiCE searches), each with a save button."""
    with st.status(f"Searching for changes that give '{settings.desired}'…", expanded=True) as status:
        try:
            found = recourse(project.id, version.version, row_key, settings.to_json())
        except counterfactual.CounterfactualError as exc:
            status.update(label="No search ran", state="error")
            st.error(str(exc), icon=":material/error:")
            return
        status.update(label=found.summary(), state="complete")
        if not found.counterfactuals:
            st.info(f"No checked change gives '{md_escape(settings.desired)}' within these settings: allow more "
                    "features to change, widen the ranges, or aim for another class.", icon=":material/info:")
            return
        may_save = users.can(state.role(), "give feedback")
        for i, cf in enumerate(found.counterfactuals):
            left, right = st.columns([3, 1], vertical_alignment="center")
            left.dataframe(changes_frame(cf), hide_index=True, key=f"cf_changes_{row_key}_{i}")
            right.metric(f"Option {i + 1}", f"{cf.predicted} ({cf.confidence:.2f})",
                         delta=f"{len(cf.changes)} change(s)", delta_color="off")
            if may_save:
                right.button("Save", key=f"cf_save_{row_key}_{version.version}_{i}", icon=":material/bookmark_add:",
                             on_click=_save, args=(project.id, version.version, row_key, cf, "dice", settings),
                             help="Keep this counterfactual for the row, with your name and the model version.")


def _save(project_id: int, version: int, row_key: str, cf: counterfactual.Counterfactual, source: str,
          settings: RecourseSettings | None, note: str = "") -> None:
    """Store a counterfactual through the write path (checked again there) and say what happened once."""
    try:
        actions.save_counterfactual(state.store(), project_id, state.user(), row_key=row_key, model_version=version,
                                    changes={c: new for c, (_, new) in cf.changes.items()}, source=source,
                                    settings=settings, note=note)
    except (actions.ActionError, users.PermissionDenied) as exc:
        st.session_state.setdefault(FLASH, {})[(project_id, row_key, source)] = ("error", f"Not saved: {exc}")
    else:
        st.session_state.setdefault(FLASH, {})[(project_id, row_key, source)] = (
            "success", f"Saved for row {row_key}: with {len(cf.changes)} change(s) model v{version} predicts "
                       f"'{cf.predicted}' ({cf.confidence:.2f}).")


def save_what_if(project: Project, version: int, row_key: str, edited: dict[str, object], note: str) -> None:
    """The what-if form's save (a button callback): the form's values through the same write path, source "what-if"."""
    schema = project.schema
    row = state.dataset(project.id, project.dataset_hash).features.loc[[row_key]]
    changes = counterfactual.edited_changes(schema, row, edited)
    changed = counterfactual.apply_changes(schema, row, changes)
    after = predict_with_confidence(state.model(project.id, version), changed, schema.classes)
    cf = counterfactual.Counterfactual(changes={c: (None, v) for c, v in changes.items()},
                                       predicted=str(after.labels[0]), confidence=float(after.confidence[0]))
    _save(project.id, version, row_key, cf, "what-if", None, note)


def say_flash(project_id: int, row_key: str, source: str) -> None:
    """Say once, where the person clicked, what the last save did (escaped: it holds keys and values)."""
    kind, text = st.session_state.get(FLASH, {}).pop((project_id, row_key, source), (None, None))
    if kind is not None:
        icon = ":material/check_circle:" if kind == "success" else ":material/error:"
        getattr(st, kind)(md_escape(text), icon=icon)


def _saved(project: Project, row_key: str) -> None:
    st.markdown("**Saved for this row**")
    saved = state.store().counterfactuals(project.id, row_key)
    if saved.empty:
        st.caption("Nothing saved yet: save a suggestion above, or a what-if that flips the prediction.")
    else:
        st.dataframe(saved_frame(saved), hide_index=True, key=f"cf_saved_{row_key}")
