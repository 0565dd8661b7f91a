"""Data page: the current project's dataset, and starting a new project from a sample or an upload."""
import plotly.express as px
import streamlit as st

from hitl_core import actions, users
from hitl_core.data import DataError, check, read_table
from hitl_core.fairness import group_labels
from hitl_core.models import MODEL_KINDS
from hitl_core.records import RETRAIN_POLICIES
from hitl_core.samples import SAMPLE_NAMES, load_sample
from hitl_ui import state
from hitl_ui.text import md_escape, plotly_text

state.through_frame(__file__)

WITHDRAWN = "data_withdrawn"  # the last withdrawal's message, shown once after the rerun
CONFIRM = "WITHDRAW"
ENCODINGS = {"auto (UTF-8)": None, "latin-1": "latin-1", "cp1252 (Windows)": "cp1252", "UTF-16": "utf-16"}


def _favourable_text(schema) -> str:
    """The favourable outcome, where fairness needs one: named, or said to be missing."""
    if schema.favourable is not None:
        return f" · favourable outcome: **{md_escape(schema.favourable)}**"
    if schema.sensitive and schema.is_binary:
        return " · favourable outcome: *not chosen yet* (choose it on the Fairness page)"
    return ""


st.title("Data")
project = state.current_project()
if project is not None:
    data = state.dataset(project.id, project.dataset_hash)
    schema = data.schema
    with st.container(border=True):
        st.subheader(f"Current project: {md_escape(project.name)}")
        cols = st.columns(4)
        cols[0].metric("Rows", f"{len(data.frame):,}")
        cols[1].metric("Training pool", f"{(data.split == 'train').sum():,}")
        cols[2].metric("Validation", f"{(data.split == 'validation').sum():,}")
        cols[3].metric("Held-out test", f"{(data.split == 'test').sum():,}",
                       help="Split off once, before any training; only ever scored, never trained or tuned on.")
        st.caption(
            f"Source {md_escape(project.source)} · target **{md_escape(schema.target)}** "
            f"({md_escape(', '.join(schema.classes))}) · {len(schema.features)} features · "
            f"model **{MODEL_KINDS[project.model_kind]}** · "
            f"sensitive: {md_escape(', '.join(schema.sensitive) or 'none')} · "
            f"ID: {md_escape(schema.id_column or 'row position')}"
            + _favourable_text(project.schema)  # the project's schema: the cached dataset's may predate a choice
        )
        st.page_link("pages/review.py", label="Review predictions", icon=":material/rate_review:")
        st.page_link("pages/monitoring.py", label="Add new rows (a batch) and watch for drift",
                     icon=":material/query_stats:")
    if done := st.session_state.pop(WITHDRAWN, None):
        st.success(md_escape(done), icon=":material/delete_forever:")
    if users.can(state.role(), "withdraw"):
        with st.expander("Withdraw a person's data (admins)", icon=":material/person_remove:"):
            st.caption("Removes the rows from this project's data, every label, vote, complaint and note about them, "
                       "the audit events about them (other events are redacted), and every older model file (it "
                       "could hold their values; those versions stay listed but can no longer be restored). A new "
                       "version is trained without them and becomes current; the database file is then compacted so "
                       "no bytes remain. Projects that share this stored dataset lose the rows too. Cannot be undone.")
            with st.form(f"withdraw_{project.id}"):
                keys_text = st.text_area(f"Row keys ({md_escape(schema.id_column or 'row position')}), one per line")
                reason = st.text_input("Why (kept in the audit trail, with the keys and values redacted)",
                                       value="the data subject asked for their data to be removed")
                typed = st.text_input(f"Type {CONFIRM} to confirm")
                if st.form_submit_button("Withdraw these rows", type="primary", icon=":material/delete_forever:"):
                    if typed.strip() != CONFIRM:
                        st.error(f"Nothing was withdrawn: type {CONFIRM} in the last box to confirm.",
                                 icon=":material/error:")
                    else:
                        try:
                            with st.status("Withdrawing: training a version without the rows, then compacting the "
                                           "database…") as status:
                                done = actions.withdraw_rows(state.store(), project.id, state.user(),
                                                             keys_text.splitlines(), reason,
                                                             threads=state.settings().threads)
                                status.update(label="Rows withdrawn", state="complete")
                        except (actions.ActionError, users.PermissionDenied, DataError) as exc:
                            st.error(md_escape(f"Nothing was withdrawn: {exc}"), icon=":material/error:")
                        else:
                            st.cache_data.clear()  # keyed by dataset hash and version, but nothing removed may linger
                            state.forget_models()
                            st.session_state[WITHDRAWN] = done.message() + ("" if done.compacted else (
                                " The database's write-ahead log was busy: run it again when the app is idle to "
                                "compact the file."))
                            st.rerun()

st.subheader("Start a new project")
source = st.radio("Data source", ["Bundled sample", "Upload a file"], horizontal=True, key="data_source")
frame, name, origin, defaults = None, "", "", {}
if source == "Bundled sample":
    sample_name = st.selectbox("Sample", SAMPLE_NAMES, key="sample_name",
                               format_func=lambda n: load_sample(n).title)
    sample = load_sample(sample_name)
    st.caption(sample.description)
    frame, name, origin = sample.frame, sample.title, f"sample:{sample.name}"
    defaults = dict(target=sample.target, id_column=sample.id_column, sensitive=list(sample.sensitive),
                    pii=list(sample.pii), favourable=sample.favourable)
else:
    upload = st.file_uploader("CSV, Excel (.xlsx) or Parquet", type=["csv", "tsv", "txt", "xlsx", "parquet"])
    encoding = st.selectbox("Text encoding (CSV only)", list(ENCODINGS), key="encoding")
    if upload is None:
        st.info("Upload a table with one row per item and a column holding the label to predict. "
                "Rows with an empty label are treated as unlabeled.", icon=":material/upload_file:")
    else:
        try:
            frame = read_table(upload.getvalue(), upload.name, max_bytes=state.settings().max_upload_bytes,
                               encoding=ENCODINGS[encoding])
            name, origin = upload.name, f"upload:{upload.name}"
        except DataError as exc:
            st.error(md_escape(exc), icon=":material/error:")  # names the file

if frame is not None:
    with st.expander(f"Preview: {len(frame):,} rows × {frame.shape[1]} columns", expanded=False):
        st.dataframe(frame.head(50), hide_index=True)
    columns = list(frame.columns)
    left, right = st.columns(2)
    target = left.selectbox("Target (what to predict)", columns, key=f"target_{name}",
                            index=columns.index(defaults.get("target", columns[-1])))
    others = [c for c in columns if c != target]
    id_default = defaults.get("id_column")
    id_column = right.selectbox("ID column (optional)", [None, *others], key=f"id_{name}",
                                index=([None, *others].index(id_default) if id_default in others else 0),
                                format_func=lambda c: "none: use row position" if c is None else c)
    rest = [c for c in others if c != id_column]
    sensitive = left.multiselect("Sensitive attributes (for fairness breakdowns)", rest,
                                 default=[c for c in defaults.get("sensitive", []) if c in rest], key=f"sens_{name}")
    pii = right.multiselect("Personal data (PII: never a feature, hidden from the review table)", rest,
                            default=[c for c in defaults.get("pii", []) if c in rest], key=f"pii_{name}")
    exclude = left.multiselect("Exclude from the model", [c for c in rest if c not in sensitive + pii],
                               key=f"excl_{name}")
    as_features = right.checkbox(
        "Use sensitive attributes as model features", value=False, key=f"sens_feat_{name}", disabled=not sensitive,
        help="Off (default): the model never sees them; they only break results down by group on the Fairness page. "
             "On: the model may learn from them, including any bias in past labels.")
    if sensitive:
        def _groups(column: str) -> str:
            counts = group_labels(frame[column]).value_counts(sort=False)
            shown = ", ".join(f"{md_escape(g)} ({n:,})" for g, n in list(counts.items())[:8])
            return f"{md_escape(column)}: {shown}" + (f", … {len(counts) - 8} more" if len(counts) > 8 else "")
        right.caption("Fairness groups (rows): " + " · ".join(_groups(c) for c in sensitive))
    try:
        schema, report = check(frame, target, id_column=id_column, sensitive=sensitive, exclude=exclude, pii=pii,
                               sensitive_as_features=as_features)
    except DataError as exc:
        st.error(md_escape(exc), icon=":material/error:")  # names columns
        st.stop()

    st.markdown("#### Validation report")
    metrics = st.columns(4)
    metrics[0].metric("Rows", f"{report.n_rows:,}")
    metrics[1].metric("Columns", report.n_columns)
    metrics[2].metric("Features", len(schema.features))
    metrics[3].metric("Unlabeled rows", f"{report.n_unlabeled:,}")
    for warning in report.warnings:
        st.warning(md_escape(warning), icon=":material/warning:")  # names columns
    table, balance = st.columns([3, 2])
    table.dataframe(report.columns, hide_index=True, column_config={
        "missing_pct": st.column_config.ProgressColumn("missing %", min_value=0, max_value=100, format="%.1f%%")})
    counts = report.class_balance.reset_index()  # plotly renders HTML (links too) in axis titles and ticks
    counts[schema.target] = counts[schema.target].map(plotly_text)
    balance.plotly_chart(
        px.bar(counts, x=schema.target, y="rows", title="Class balance (labelled rows)", text_auto=True,
               labels={schema.target: plotly_text(schema.target)})
        .update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10)),
        width="stretch")

    with st.form("create_project"):
        favourable = None
        if sensitive:
            st.markdown("#### Favourable outcome")
            stated = defaults.get("favourable") if target == defaults.get("target") else None  # a sample's own
            why = ("The class people want (an approved loan, not a default). Selection rates and the four-fifths "
                   "rule on the Fairness page compare how often each group gets it; 'yes' can mean approved or "
                   "defaulted, so it is never guessed.")
            if schema.is_binary:
                favourable = st.radio(
                    "Which outcome is favourable for the people in this data?", list(schema.classes),
                    index=list(schema.classes).index(stated) if stated in schema.classes else None, horizontal=True,
                    key=f"favourable_{name}_{target}", help=why, format_func=md_escape)  # options render Markdown
            else:
                favourable = st.selectbox(
                    "Favourable outcome (optional with more than two classes)", [None, *schema.classes],
                    index=[None, *schema.classes].index(stated) if stated in schema.classes else 0,
                    key=f"favourable_{name}_{target}",
                    format_func=lambda c: "none: compare each class against the rest" if c is None else c,
                    help=why + " With more than two classes the Fairness page compares any class against the rest; "
                               "the favourable one is shown first.")
        st.markdown("#### Model and loop")
        c1, c2, c3 = st.columns(3)
        model_kind = c1.selectbox("Model", list(MODEL_KINDS), format_func=MODEL_KINDS.get)
        policy = c2.selectbox("Retrain", list(RETRAIN_POLICIES), format_func=RETRAIN_POLICIES.get)
        every = c3.number_input("N (for 'every N')", min_value=1, max_value=1000, value=5)
        project_name = st.text_input("Project name", value=name)
        submitted = st.form_submit_button("Create project and train", type="primary", icon=":material/play_arrow:")
    if submitted and sensitive and schema.is_binary and favourable is None:
        st.error(f"Choose the favourable outcome ({md_escape(' or '.join(schema.classes))}) under *Favourable "
                 "outcome* before creating the project: the fairness figures compare how often each group gets it.",
                 icon=":material/balance:")
    elif submitted:
        try:
            with st.status("Creating the project…", expanded=True) as status:
                st.write("Splitting train / validation / held-out test (seeded, once) and storing the dataset…")
                st.write(f"Training {MODEL_KINDS[model_kind]} and the baselines…")
                new_project, version = actions.create_project(
                    state.store(), state.user(), name=project_name or name, source=origin, frame=frame,
                    schema=schema.with_favourable(favourable),
                    model_kind=model_kind, retrain_policy=policy, retrain_every=int(every),
                    threads=state.settings().threads)
                status.update(label=f"Project created: model version 1, validation accuracy "
                                    f"{version.validation['accuracy']:.3f}", state="complete")
            state.select_project(new_project.id)
            st.rerun()
        except (DataError, ValueError) as exc:
            st.error(f"Could not create the project: {md_escape(exc)}", icon=":material/error:")
