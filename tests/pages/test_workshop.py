"""Workshop page: the lead's controls, the voter's phone view and the shared screen, each chosen by role and address."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.store import Store
from tests.pages.conftest import APP
from tests.pages.test_sign_in import _sign_in

PAGE = "pages/workshop.py"


def _store(database_url: str) -> Store:
    return Store(database_url)


def _texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _vote_buttons(at: AppTest) -> dict[str, object]:
    return {b.label: b for b in at.button if b.key and b.key.startswith("workshop_vote_")}


def test_the_lead_opens_a_queue_row_votes_and_reveals(start_app, database_url) -> None:
    at = start_app(PAGE)  # local mode: the one person is an admin, so the lead's controls show
    assert not at.exception and "No round yet" in at.info[0].value
    queued = at.selectbox(key="workshop_queue_pick").value
    at = at.button(key="workshop_open").click().run()
    assert f"row {queued} · voting (tally hidden) · **0** votes" in _texts(at)
    at = _vote_buttons(at)["yes"].click().run()
    assert "**Your vote: yes**" in _texts(at) and "**1** vote" in _texts(at)
    at = at.button(key="workshop_reveal").click().run()
    assert "revealed (voting still open)" in _texts(at) and at.button(key="workshop_reveal").disabled
    store = _store(database_url)
    try:
        project = store.projects()[0]
        decisions = store.decisions(project.id)
        assert list(zip(decisions["row_key"], decisions["user"], decisions["new_label"], decisions["kind"])) == [
            (queued, "local", "yes", "workshop")]
        assert store.workshop_round(project.id).predicted_label in ("yes", "no")
    finally:
        store.engine.dispose()
    at = at.button(key="workshop_close").click().run()
    assert "closed" in _texts(at) and "## Waiting for the lead" in _texts(at)
    at = at.button(key="workshop_next").click().run()  # the next queue row: the voted one has left the queue
    store = _store(database_url)
    try:
        second = store.workshop_round(project.id)
        assert second.row_key != queued and second.status == "voting"
    finally:
        store.engine.dispose()
    assert f"Round #{second.id}** · row {second.row_key} · voting" in _texts(at)


def test_the_shared_screen_hides_the_votes_until_the_reveal(start_app, database_url) -> None:
    at = start_app(PAGE)
    at.query_params["screen"] = "1"
    at = at.run()
    assert "No row on the screen yet" in at.info[0].value
    store = _store(database_url)
    try:
        project = store.projects()[0]
        key = str(store.pool_rows(project)[0][0])
        opened = actions.open_round(store, project.id, "local", key)
        for person, label in (("ann", "yes"), ("bob", "yes"), ("cat", "no")):
            actions.cast_vote(store, project.id, person, opened.id, label)
        at = at.run()
        assert "# 3 votes so far" in _texts(at) and not at.get("plotly_chart")
        assert {"income", "age"} <= {m.label for m in at.metric}  # the row's values in large type
        assert "approved" not in {m.label for m in at.metric}  # never the answer the room is asked for
        actions.reveal_round(store, project.id, "local", opened.id)
        predicted, confidence = store.workshop_round(project.id).predicted_label, store.workshop_round(
            project.id).confidence
    finally:
        store.engine.dispose()
    at = at.run()
    assert not at.exception
    assert "2 of 3 people say yes" in _texts(at) and f"the model says {predicted}" in _texts(at)
    assert "What moved the model most" in _texts(at)
    assert len(at.get("plotly_chart")) == 1
    assert any(f"confidence {confidence:.0%}" in c.value for c in at.caption)


def test_a_viewer_gets_the_phone_view_and_votes_as_themselves(start_app, database_url) -> None:
    start_app(None)  # the demo project, made in local mode
    store = _store(database_url)
    try:
        actions.add_user(store, "local", name="root", role="admin", password="root password")
        actions.add_user(store, "root", name="vic", role="viewer", password="vic password")
        actions.add_user(store, "root", name="ann", role="annotator", password="ann password")
        project = store.projects()[0]
        at = _sign_in(AppTest.from_file(APP, default_timeout=120).run(), "vic", "vic password")
        at = at.switch_page(PAGE).run()
        assert "## Waiting for the lead" in _texts(at) and not at.toggle  # no controls, no screen toggle
        assert not [b for b in at.button if b.key in ("workshop_open", "workshop_reveal")]
        opened = actions.open_round(store, project.id, "root", str(store.pool_rows(project)[0][0]))
        at = at.run()
        assert list(_vote_buttons(at)) == list(project.schema.classes)
        at = _vote_buttons(at)["no"].click().run()
        assert "**Your vote: no**" in _texts(at) and "Waiting for the lead to reveal" in _texts(at)
        assert _vote_buttons(at)["no"].proto.type == "primary"  # the chosen answer stands out
        at = _vote_buttons(at)["yes"].click().run()  # a change of mind replaces the vote
        assert list(store.workshop_votes(opened.id)["label"]) == ["yes"]
        assert store.decisions(project.id)["user"].unique().tolist() == ["vic"]
        annotator = _sign_in(AppTest.from_file(APP, default_timeout=120).run(), "ann", "ann password")
        annotator = annotator.switch_page(PAGE).run()
        assert list(_vote_buttons(annotator)) == list(project.schema.classes)  # annotators vote, never run it
        assert not [b for b in annotator.button if b.key == "workshop_open"]
        actions.close_round(store, project.id, "root", opened.id)
        at = at.run()
        assert "## Waiting for the lead" in _texts(at) and not _vote_buttons(at)
    finally:
        store.engine.dispose()
