"""HITL Workbench: the frame around the pages (page config, sidebar, navigation)."""
import streamlit as st

from hitl_ui import sign_in, state

st.set_page_config(page_title="HITL Workbench", page_icon=":material/model_training:", layout="wide")
pages = {
    "Project": [st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
                st.Page("pages/data.py", title="Data", icon=":material/table_chart:"),
                st.Page("pages/brief.py", title="Brief", icon=":material/description:"),
                st.Page("pages/people.py", title="People", icon=":material/group:")],
    "Loop": [
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("pages/versions.py", title="Versions", icon=":material/history_toggle_off:"),
        st.Page("pages/monitoring.py", title="Monitoring", icon=":material/query_stats:"),
        st.Page("pages/fairness.py", title="Fairness", icon=":material/balance:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/insights:"),
        st.Page("pages/audit.py", title="Audit trail", icon=":material/history:"),
        st.Page("pages/team.py", title="Team", icon=":material/groups:"),
        st.Page("pages/workshop.py", title="Workshop", icon=":material/how_to_vote:"),
    ],
    "Experiments": [st.Page("pages/simulation.py", title="Simulation", icon=":material/science:")],
}
if sign_in.required():  # with accounts, the sign-in form is the only page until someone signs in
    st.navigation(sign_in.stand_ins([page for section in pages.values() for page in section]),
                  position="hidden").run()
    st.stop()
navigation = st.navigation(pages)  # first, so the sidebar shows these pages even while the demo is set up
state.ensure_demo_project()

with st.sidebar:
    st.markdown("### :material/model_training: HITL Workbench")
    state.project_picker(state.store().projects())
    sign_in.sidebar_identity()

state.mark_frame_and_follow_deep_link()
navigation.run()
