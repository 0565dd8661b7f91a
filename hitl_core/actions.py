"""The one write path: every change anybody makes goes through a function here.

Each function takes the *actor* (who), validates, and in one transaction of
:meth:`hitl_core.store.Store.write` writes the change and an event (who, when, action, object,
before → after). Pages, the CLI, the worker, tests and benchmarks all call these; nothing else
writes. A decision carries the label its author saw: when someone else changed the row since, it is
refused as a :class:`Conflict` instead of overwriting unseen.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from hitl_core import (
    batches, complaints, consensus, counterfactual, drift, loop, model_files, users, withdraw, workshop,
)
from hitl_core import brief as briefs
from hitl_core.brief import Brief
from hitl_core.complaints import Complaint
from hitl_core.costs import CostError, CostModel, project_costs
from hitl_core.data import Dataset, DataError, Schema, content_hash
from hitl_core.models import MODEL_KINDS, predict_with_confidence
from hitl_core.records import (
    Batch,
    EXPLANATION_METHODS, NOT_CHECKED, RETRAIN_POLICIES, VERDICTS, Decision, DecisionRequest, Job, ModelVersion, Project,
    Round,
)
from hitl_core.store import Store, Tx

MAX_NOTE = 2000
MAX_ACTOR = 100
MAX_NAME = 200
SETTINGS = ("name", "model_kind", "retrain_policy", "retrain_every", "threshold", "overlap", "blind")
MAX_OVERLAP = 10
MAX_GUIDELINES = 20_000
MAX_REASON = 200
LEASE_SECONDS = 120  # a row handed out and not decided returns to the queue after this


class ActionError(ValueError):
    """A change that was not made; the message says why and what to do."""


class InvalidAction(ActionError):
    """The change is impossible as asked (unknown row or label, bad setting); nothing was written."""


@dataclass(frozen=True)
class Conflict:
    """Someone else changed a row after the person saw it: the row's label now, who set it and when."""

    row_key: str
    expected: str | None
    current: str | None
    changed_by: str
    changed_at: datetime | None

    def message(self) -> str:
        seen = _label_text(self.expected)
        when = f" at {self.changed_at:%Y-%m-%d %H:%M:%S} UTC" if self.changed_at else ""
        return (f"Row {self.row_key} was changed by {self.changed_by} to {_label_text(self.current)}{when}; "
                f"you saw {seen}.")


class ConflictError(ActionError):
    """Every decision asked for was refused because its rows changed since they were shown."""

    def __init__(self, conflicts: Sequence[Conflict]):
        self.conflicts = list(conflicts)
        super().__init__(" ".join(c.message() for c in self.conflicts))


@dataclass(frozen=True)
class SavedDecision:
    """A decision as stored: the true previous effective label was read inside the writing transaction."""

    id: int
    row_key: str
    old_label: str | None
    new_label: str
    given: str | None
    action: str

    def message(self) -> str:
        """What happened, exactly: "Changed row 8: yes → no (given: yes)"."""
        given = f" (given: {_label_text(self.given)})"
        if self.old_label == self.new_label:
            return f"Confirmed row {self.row_key}: {self.new_label}{given}"
        verb = "Labelled" if self.old_label is None else "Changed"
        return f"{verb} row {self.row_key}: {_label_text(self.old_label)} → {self.new_label}{given}"


@dataclass(frozen=True)
class Outcome:
    """What recording decisions did: saved, refused as conflicts, and the retrain it asked for."""

    saved: list[SavedDecision] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    retrain: Job | None = None

    def message(self) -> str:
        if len(self.saved) == 1 and not self.conflicts:
            return self.saved[0].message() + "."
        parts = [f"Saved {len(self.saved)} decision(s)"] if self.saved else []
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} refused because someone changed them first")
        return "; ".join(parts) + "." if parts else "Nothing to save."


def _label_text(label: str | None) -> str:
    return "unlabeled" if label is None else f"{label}"


def _check_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise InvalidAction("Say who you are: the actor's name is empty.")
    if len(actor) > MAX_ACTOR:
        raise InvalidAction(f"The name '{actor[:20]}…' is {len(actor)} characters; use at most {MAX_ACTOR}.")
    return actor


def _given(value) -> str | None:
    return None if pd.isna(value) else str(value)


# --------------------------------------------------------------------------- decisions
def record_decisions(store: Store, project_id: int, actor: str, requests: Sequence[DecisionRequest]) -> Outcome:
    """Record decisions in one transaction; rows changed since their author saw them come back as conflicts.

    Raises :class:`InvalidAction` (nothing written) for a label that is not a class, a row that is
    not in the review pool, or a note longer than ``MAX_NOTE`` characters.
    """
    actor = _check_actor(actor)
    users.authorise(store, actor, "label")  # a refusal says so before any message about the rows
    project = store.project(project_id)
    pool_keys, given = store.pool_rows(project)
    _validate(project.schema, pool_keys, requests)
    _check_reasons(project, requests)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "label")
        saved, conflicts = _record_in(tx, project_id, actor, requests, given)
        job = _retrain_if_due(tx, tx.project(project_id), actor) if saved else None  # the policy as of now
    return Outcome(saved, conflicts, job)


def _record_in(tx: Tx, project_id: int, actor: str, requests: Sequence[DecisionRequest],
               given: pd.Series) -> tuple[list[SavedDecision], list[Conflict]]:
    """Write validated decisions, each with its event, inside ``tx``; rows changed since they were seen are
    returned as conflicts (the one decision path: the Review page, the CLI and complaint resolutions)."""
    saved, conflicts = [], []
    voting = tx.project(project_id).overlap > 1  # each person's label is kept as a vote: nothing is overwritten
    for request in requests:
        key = str(request.row_key)
        latest = tx.latest_decision(project_id, key, user=actor if voting else None)
        given_label = _given(given.get(key))
        current = latest["new_label"] if latest else given_label
        if not voting and request.expected is not NOT_CHECKED and request.expected != current:
            conflicts.append(Conflict(key, request.expected, current,
                                      latest["user"] if latest else "the dataset",
                                      latest["created_at"] if latest else None))
            continue
        predicted = request.predicted_label
        action = "accept" if request.new_label == (predicted if predicted is not None else current) else "override"
        decision_id = tx.add_decision(project_id, Decision(
            row_key=key, new_label=request.new_label, action=action, user=actor, old_label=current,
            predicted_label=predicted, confidence=request.confidence, model_version=request.model_version,
            note=request.note.strip(), kind="vote" if voting else "decision", reason=request.reason))
        tx.add_event(project_id=project_id, actor=actor, action=f"vote ({action})" if voting else action,
                     object=f"row {key}", before={"label": current},
                     after={"label": request.new_label, "decision": decision_id,
                            **({"reason": request.reason} if request.reason else {})},
                     note=request.note.strip())
        saved.append(SavedDecision(decision_id, key, current, request.new_label, given_label, action))
    return saved, conflicts


def record_decision(store: Store, project_id: int, actor: str, request: DecisionRequest) -> Outcome:
    """One decision; raises :class:`ConflictError` when the row changed since its author saw it."""
    outcome = record_decisions(store, project_id, actor, [request])
    if outcome.conflicts:
        raise ConflictError(outcome.conflicts)
    return outcome


def _check_reasons(project: Project, requests: Sequence[DecisionRequest]) -> None:
    """An override names a reason from the project's list when the lead has set one."""
    for request in requests:
        if request.reason is not None and request.reason not in project.reasons:
            allowed = ", ".join(project.reasons) or "none: the lead has not listed any"
            raise InvalidAction(f"'{request.reason}' is not one of this project's override reasons ({allowed}).")
        overrides = request.predicted_label is not None and request.new_label != request.predicted_label
        if overrides and project.reasons and request.reason is None and not project.blind:  # blind: unseen
            raise InvalidAction(f"Row {request.row_key}: say why you override the model; pick a reason "
                                f"({', '.join(project.reasons)}).")


def _validate(schema: Schema, pool_keys: pd.Index, requests: Sequence[DecisionRequest]) -> None:
    if not requests:
        raise InvalidAction("No decision to record: pick a row and a label first.")
    for request in requests:
        if request.new_label not in schema.classes:
            raise InvalidAction(f"'{request.new_label}' is not a class of '{schema.target}'; "
                                f"choose one of {', '.join(schema.classes)}.")
        if str(request.row_key) not in pool_keys:
            raise InvalidAction(f"Row '{request.row_key}' is not in this project's review pool; pick a row shown on "
                                "the Review page (validation and held-out test rows are never relabelled).")
        if len(request.note) > MAX_NOTE:
            raise InvalidAction(f"The note on row {request.row_key} is {len(request.note):,} characters; "
                                f"keep it under {MAX_NOTE:,}.")


# --------------------------------------------------------------------------- settings and retrains
def change_settings(store: Store, project_id: int, actor: str, **changes) -> Project:
    """Change a project's name, model family, retrain policy, N or confidence threshold, with an event."""
    actor = _check_actor(actor)
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise InvalidAction(f"Cannot change {sorted(unknown)}; only {', '.join(SETTINGS)}.")
    changes = _validated_settings(changes)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "change settings")
        project = tx.project(project_id)
        before = {k: getattr(project, k) for k in changes if getattr(project, k) != changes[k]}
        if not before:
            return project
        after = {k: changes[k] for k in before}
        project = tx.update_project(project_id, **after)
        tx.add_event(project_id=project_id, actor=actor, action="settings", object=f"project {project_id}",
                     before=before, after=after)
        if "model_kind" in after:
            _request_retrain(tx, project, actor, trigger=f"model changed to {after['model_kind']}")
    return project


def set_favourable_outcome(store: Store, project_id: int, actor: str, favourable: str) -> Project:
    """Name the outcome people want (approved, not defaulted) for the project's fairness, with an event.

    It lives in the project's schema: selection rates, the four-fifths rule and the stored history
    are all read for this class. Refused (nothing written) when it is not a class of the target.
    """
    actor = _check_actor(actor)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "change settings")
        project = tx.project(project_id)
        if favourable is None:
            raise InvalidAction(f"Pick the favourable outcome: one of {list(project.schema.classes)}.")
        try:
            schema = project.schema.with_favourable(favourable)
        except DataError as exc:
            raise InvalidAction(str(exc)) from exc
        before = project.schema.favourable
        if schema.favourable == before:
            return project
        project = tx.update_project(project_id, schema_json=schema.to_json())
        tx.add_event(project_id=project_id, actor=actor, action="settings", object=f"project {project_id}",
                     before={"favourable": before}, after={"favourable": schema.favourable})
    return project


def set_costs(store: Store, project_id: int, actor: str, costs: CostModel) -> Project:
    """Set what each kind of error and one human review cost for the project, with an event (before → after).

    Refused (nothing written) when the costs do not price exactly the target's classes; the
    :class:`~hitl_core.costs.CostModel` itself already refused negative, infinite or missing numbers.
    """
    actor = _check_actor(actor)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "set costs")
        project = tx.project(project_id)
        try:
            costs.check_classes(project.schema.classes)
        except CostError as exc:
            raise InvalidAction(str(exc)) from exc
        before = project_costs(project)
        if before == costs:
            return project
        project = tx.update_project(project_id, costs_json=costs.to_json())
        tx.add_event(project_id=project_id, actor=actor, action="costs", object=f"project {project_id}",
                     before=before.to_dict() if before else None, after=costs.to_dict())
    return project


def _validated_settings(changes: dict) -> dict:
    out = dict(changes)
    if "name" in out:
        out["name"] = str(out["name"]).strip()
        if not out["name"] or len(out["name"]) > MAX_NAME:
            raise InvalidAction(f"A project name needs 1 to {MAX_NAME} characters.")
    if "model_kind" in out and out["model_kind"] not in MODEL_KINDS:
        raise InvalidAction(f"Unknown model '{out['model_kind']}'; choose one of {', '.join(MODEL_KINDS)}.")
    if "retrain_policy" in out and out["retrain_policy"] not in RETRAIN_POLICIES:
        raise InvalidAction(f"Unknown retrain policy '{out['retrain_policy']}'; choose one of "
                            f"{', '.join(RETRAIN_POLICIES)}.")
    if "retrain_every" in out:
        out["retrain_every"] = int(out["retrain_every"])
        if not 1 <= out["retrain_every"] <= 1000:
            raise InvalidAction("N (retrain after every N corrections) must be between 1 and 1,000.")
    if "overlap" in out:
        out["overlap"] = int(out["overlap"])
        if not 1 <= out["overlap"] <= MAX_OVERLAP:
            raise InvalidAction(f"Overlap is how many people label each row: give 1 to {MAX_OVERLAP}.")
    if "blind" in out:
        out["blind"] = bool(out["blind"])
    if "threshold" in out:
        out["threshold"] = float(out["threshold"])
        if not 0.0 <= out["threshold"] <= 1.0:
            raise InvalidAction("The confidence threshold is a probability: give a value between 0 and 1.")
    return out


def request_retrain(store: Store, project_id: int, actor: str, *, trigger: str = "manual") -> Job:
    """Ask a worker for a new version; joins the project's queued request if there is one."""
    actor = _check_actor(actor)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "retrain")
        return _request_retrain(tx, tx.project(project_id), actor, trigger=trigger, log=True)


def _request_retrain(tx: Tx, project: Project, actor: str, *, trigger: str, log: bool = True) -> Job:
    """A queued retrain job of the project: the waiting one (requests coalesce) or a new one."""
    queued = [j for j in tx.open_jobs(project.id) if j.status == "queued"]
    job = queued[0] if queued else tx.add_job(project.id, trigger=trigger, requested_by=actor)
    if log:
        tx.add_event(project_id=project.id, actor=actor, action="retrain_requested", object=f"project {project.id}",
                     after={"job": job.id, "trigger": trigger, "joined_waiting_request": bool(queued)})
    return job


def _retrain_if_due(tx: Tx, project: Project, actor: str) -> Job | None:
    """After decisions: queue a retrain when the policy asks (the decision events already say why)."""
    pending = tx.last_decision_count_after(project.id, tx.current_snapshot(project.id))
    if not loop.retrain_due(project, pending):
        return None
    return _request_retrain(tx, project, actor, trigger="correction", log=False)


# --------------------------------------------------------------------------- the project brief
def save_brief(store: Store, project_id: int, actor: str, brief: Brief) -> int:
    """Save the project's brief as a new version (every earlier one is kept) and return its number.

    Refused (nothing written) with :class:`InvalidAction` when a field is wrong (unknown metric, a
    target out of the metric's range, an empty name; :func:`hitl_core.brief.validate`), and with
    ``users.PermissionDenied`` for a role that may not edit the brief. The event says what changed.
    """
    actor = _check_actor(actor)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "edit brief")
        try:
            cleaned = briefs.validate(brief, tx.project(project_id).schema)
        except briefs.BriefError as exc:
            raise InvalidAction(str(exc)) from exc
        previous = tx.latest_brief(project_id)
        changed = briefs.changes(None if previous is None else briefs.from_json(previous), cleaned)
        number = tx.add_brief(project_id, created_by=actor, brief_json=briefs.to_json(cleaned))
        tx.add_event(project_id=project_id, actor=actor, action="brief", object=f"brief v{number}",
                     before={"version": number - 1 if previous is not None else None},
                     after={"version": number, "changes": changed})
    return number


# --------------------------------------------------------------------------- gold rows (known answers)
MAX_GOLD_RATE = 0.5  # above this the queue would be mostly known answers


def set_gold(store: Store, project_id: int, actor: str, rows: dict[str, str | None]) -> int:
    """Set the known answer of pool rows (``None`` removes a row from gold), with one event per change.

    Gold rows are mixed into people's "ask next" batch (unmarked) to measure accuracy on known
    answers. Refused (nothing written) for a label that is not a class or a row outside the pool.
    Returns how many rows changed.
    """
    actor = _check_actor(actor)
    if not rows:
        raise InvalidAction("No gold rows given: pick rows and their known label first.")
    project = store.project(project_id)
    pool_keys, _ = store.pool_rows(project)
    for key, label in rows.items():
        if str(key) not in pool_keys:
            raise InvalidAction(f"Row '{key}' is not in this project's review pool; gold rows must be rows people "
                                "can be asked about (validation and held-out test rows never are).")
        if label is not None and label not in project.schema.classes:
            raise InvalidAction(f"'{label}' is not a class of '{project.schema.target}'; choose one of "
                                f"{', '.join(project.schema.classes)}.")
    changed = 0
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "adjudicate")
        for key, label in rows.items():
            before = tx.gold_label(project_id, str(key))
            if before == label:
                continue
            tx.set_gold_label(project_id, str(key), label, actor)
            tx.add_event(project_id=project_id, actor=actor, action="gold", object=f"row {key}",
                         before={"gold": before}, after={"gold": label})
            changed += 1
    return changed


def set_gold_rate(store: Store, project_id: int, actor: str, rate: float) -> float:
    """Set the share of the "ask next" batch given to gold rows (0 = none), with an event."""
    actor = _check_actor(actor)
    rate = float(rate)
    if not 0.0 <= rate <= MAX_GOLD_RATE:
        raise InvalidAction(f"The gold rate is a share of the batch: give a value between 0 and {MAX_GOLD_RATE}.")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "change settings")
        before = tx.gold_rate(project_id)
        if before != rate:
            tx.set_gold_rate(project_id, rate, actor)
            tx.add_event(project_id=project_id, actor=actor, action="settings", object=f"project {project_id}",
                         before={"gold_rate": before}, after={"gold_rate": rate})
    return rate


# --------------------------------------------------------------------------- versions
def record_version(store: Store, project_id: int, trained: loop.TrainedVersion, *, actor: str, trigger: str,
                   job: Job | None = None, worker: str | None = None,
                   trained_on: str | None = None) -> ModelVersion | None:
    """Store a trained version; it becomes current only if it includes every decision the current one does.

    A version from a job that is no longer this worker's (its lease expired and another worker
    took it, or a withdrawal cancelled it) is discarded: ``None``. A version trained on an older
    snapshot than the current one is stored as *superseded*, with the reason, and the project keeps
    its model. ``trained_on``: the dataset hash it was trained on; refused if the project's rows
    changed since (a withdrawal must not come back inside a model file).
    """
    stored = model_files.dumps(trained.model)  # before the lock: serialising a forest takes a while
    with store.write(project_id) as tx:
        if trained_on is not None and tx.project(project_id).dataset_hash != trained_on:
            raise InvalidAction("The project's rows changed while this version trained (rows were withdrawn or "
                                "added); nothing was stored: retrain again.")
        if job is not None and not tx.owns_job(job.id, worker):
            tx.add_event(project_id=project_id, actor=actor, action="version_discarded", object=f"job {job.id}",
                         after={"reason": "the job was taken over by another worker after its lease expired"})
            return None
        return _store_version(tx, project_id, trained, stored, actor=actor, trigger=trigger, job=job)


def _moves_forward(trained: loop.TrainedVersion, job: Job | None, current: ModelVersion | None) -> bool:
    """Newer labels win; on the same labels a later request wins (a job asked for later, or a direct retrain)."""
    if current is None or trained.last_decision_id != current.last_decision_id:
        return current is None or trained.last_decision_id > current.last_decision_id
    return job is None or job.id >= (current.job_id or 0)


def _store_version(tx: Tx, project_id: int, trained: loop.TrainedVersion, stored: model_files.ModelFile, *,
                   actor: str, trigger: str, job: Job | None) -> ModelVersion:
    current = tx.current_version(project_id)
    forward = _moves_forward(trained, job, current)
    reason = ("" if forward else
              f"trained on decisions up to #{trained.last_decision_id}, but v{current.version} already "
              f"includes decisions up to #{current.last_decision_id}")
    version = tx.add_model_version(
        project_id, model=trained.model, n_human_labels=trained.n_human_labels, n_train=trained.n_train,
        n_decisions=trained.n_decisions, last_decision_id=trained.last_decision_id, trigger=trigger,
        evaluation=trained.metrics(), status="accepted" if forward else "superseded", status_reason=reason,
        job_id=job.id if job else None, stored=stored)
    if forward:
        tx.update_project(project_id, current_version=version.version)
    if job is not None:
        tx.finish_job(job.id, status="done", result_version=version.version)
    tx.add_event(project_id=project_id, actor=actor, action="version", object=f"v{version.version}",
                 before={"current": current.version if current else None},
                 after={"version": version.version, "status": version.status, "trigger": trigger,
                        "decisions": trained.n_decisions, "reason": reason})
    return version


def set_current_version(store: Store, project_id: int, actor: str, *, version: int, reason: str) -> ModelVersion:
    """Roll back to an earlier version, or promote a superseded one: it becomes the project's model.

    The reason is required (it is what the audit trail shows); the next retrain on newer decisions
    becomes current again by the usual rule.
    """
    actor = _check_actor(actor)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAction("Say why: a rollback or promotion needs a reason for the audit trail.")
    if len(reason) > MAX_NOTE:
        raise InvalidAction(f"The reason is {len(reason):,} characters; keep it under {MAX_NOTE:,}.")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "rollback")
        current = tx.current_version(project_id)
        target = tx.version(project_id, version)
        if target is None:
            raise InvalidAction(f"Project {project_id} has no version {version}; see the version table.")
        if tx.model_withdrawn(project_id, version):
            raise InvalidAction(f"v{version} cannot be made current: its model file was dropped when rows were "
                                "withdrawn (it could hold their values). Pick a version trained after the withdrawal.")
        if current is not None and current.version == version:
            raise InvalidAction(f"v{version} is already the current version.")
        verb = ("promote" if target.status == "superseded" else
                "rollback" if current is None or version < current.version else "restore")
        tx.update_project(project_id, current_version=version)
        tx.mark_accepted(project_id, version)
        tx.add_event(project_id=project_id, actor=actor, action=verb, object=f"v{version}",
                     before={"current": current.version if current else None}, after={"current": version},
                     note=reason)
        return tx.version(project_id, version)


def retrain(store: Store, project_id: int, actor: str, *, trigger: str, dataset: Dataset | None = None,
            threads: int = 1) -> ModelVersion:
    """Train on the current labels in this process and record the version (no job, no worker)."""
    actor = _check_actor(actor)
    with store.write(project_id) as tx:  # refuse before spending a fit
        users.authorise(tx, actor, "retrain")
    project = store.project(project_id)
    trained = loop.train_snapshot(store, project, dataset=dataset, threads=threads)
    return record_version(store, project_id, trained, actor=actor, trigger=trigger,
                          trained_on=project.dataset_hash if dataset is None else None)


def create_project(store: Store, actor: str, *, name: str, source: str, frame: pd.DataFrame, schema: Schema,
                   model_kind: str, seed: int = 0, threads: int = 1, **settings) -> tuple[Project, ModelVersion]:
    """Store the dataset with its one split (reused if this content was seen before) and train version 1."""
    actor = _check_actor(actor)
    with store.write() as tx:  # refuse before spending a fit
        users.authorise(tx, actor, "create project")
    name = _validated_settings({"name": name})["name"]
    _validated_settings({"model_kind": model_kind, **settings})
    dataset = Dataset.create(name, frame, schema, seed=seed)
    dataset_hash = content_hash(dataset.frame)
    if store.has_dataset(dataset_hash):
        dataset = Dataset(name=name, frame=dataset.frame, schema=schema,
                          split=store.load_dataset_split(dataset_hash))
    first = loop.train_first(dataset, model_kind, seed=seed, threads=threads)  # a failing fit leaves nothing behind
    stored = model_files.dumps(first.model)
    store.save_dataset(dataset, dataset_hash)
    with store.write() as tx:
        users.authorise(tx, actor, "create project")
        project = tx.add_project(name=name, dataset_hash=dataset_hash, source=source, schema=schema,
                                 model_kind=model_kind, seed=seed, **settings)
        tx.add_event(project_id=project.id, actor=actor, action="project_created", object=f"project {project.id}",
                     after={"name": name, "source": source, "rows": len(dataset.frame), "target": schema.target,
                            "model_kind": model_kind, **settings})
        version = _store_version(tx, project.id, first, stored, actor=actor, trigger="initial", job=None)
        return tx.project(project.id), version


# --------------------------------------------------------------------------- new data
MAX_BATCH_ATTEMPTS = 3


def add_batch(store: Store, project_id: int, actor: str, frame: pd.DataFrame, source: str) -> Batch:
    """Append a batch of new rows to a project, tagged with the batch, with its drift against the training pool.

    The rows join the training pool (the split of the old rows is unchanged), so the current model
    scores them, the review queue ranks them and labels on them train the next version. Refused with
    :class:`InvalidAction` (nothing written) when the batch's columns, types, classes or IDs do not
    fit the project's data; ``users.PermissionDenied`` for a role that may not add data.
    """
    actor = _check_actor(actor)
    source = (source or "").strip()[:300] or "upload"
    users.authorise(store, actor, "add data")  # a refusal says so before any message about the file
    for _ in range(MAX_BATCH_ATTEMPTS):  # the drift is computed outside the lock; redo it if the rows moved since
        project = store.project(project_id)
        dataset = store.load_dataset(project)
        try:
            rows = batches.conform(dataset, frame)
        except DataError as exc:
            raise InvalidAction(str(exc)) from exc
        report = _batch_drift(store, project, dataset, rows)
        new_frame, split = batches.appended(dataset, rows)
        with store.write(project_id) as tx:
            users.authorise(tx, actor, "add data")
            if tx.project(project_id).dataset_hash != project.dataset_hash:
                continue
            new_hash = tx.replace_dataset(project_id, new_frame, split)
            batch = tx.add_batch(project_id, source=source, row_keys=rows.index, created_by=actor, drift=report)
            tx.add_event(project_id=project_id, actor=actor, action="batch_added", object=f"batch {batch.number}",
                         before={"dataset": project.dataset_hash, "rows": len(dataset.frame)},
                         after={"dataset": new_hash, "rows": len(new_frame), "batch": batch.number,
                                "new_rows": len(rows), "labelled": int(rows[project.schema.target].notna().sum()),
                                "drifted": batch.drifted},
                         note=source)
            return batch
    raise InvalidAction("The project's rows kept changing while this batch was checked; add it again.")


def _batch_drift(store: Store, project: Project, dataset: Dataset, rows: pd.DataFrame) -> dict:
    """The batch against the training pool (features), and the current version's answers on both."""
    pool = dataset.features.loc[dataset.rows("train")]
    current = store.current_version(project.id)
    predictions = {}
    if current is not None:
        model = store.load_model(project.id, current.version)
        predictions = {side: predict_with_confidence(model, X, project.schema.classes).to_frame()
                       for side, X in (("reference_preds", pool), ("batch_preds", rows[list(project.schema.features)]))}
    report = drift.drift_report(pool, rows, project.schema, **predictions).to_json()
    if report["prediction_shift"] is not None:
        report["prediction_shift"] = {"version": current.version, **report["prediction_shift"]}
    return {**report, "n_reference": len(pool)}


# --------------------------------------------------------------------------- feedback on explanations


def give_explanation_feedback(store: Store, project_id: int, actor: str, *, row_key: str, model_version: int,
                              method: str, verdict: str, feature: str | None = None, note: str = "") -> int:
    """Record a reviewer's verdict on one row's explanation (optionally on one feature of it), with an event.

    The verdict is about what the person saw: the explanation of ``model_version`` by ``method``.
    Refused (nothing written) for an unknown row, version, method, verdict or feature, or an overlong note.
    """
    actor = _check_actor(actor)
    project = store.project(project_id)
    key, note, feature = str(row_key), (note or "").strip(), (feature or None)
    if method not in EXPLANATION_METHODS:
        raise InvalidAction(f"Unknown explanation method '{method}'; choose one of {', '.join(EXPLANATION_METHODS)}.")
    if verdict not in VERDICTS:
        raise InvalidAction(f"Unknown verdict '{verdict}'; choose one of {', '.join(VERDICTS)}.")
    if feature is not None and feature not in project.schema.features:
        raise InvalidAction(f"'{feature}' is not a feature of this project's model; leave the feature empty to judge "
                            "the whole explanation, or pick one of its features.")
    if len(note) > MAX_NOTE:
        raise InvalidAction(f"The note is {len(note):,} characters; keep it under {MAX_NOTE:,}.")
    if key not in store.pool_rows(project)[1].index:
        raise InvalidAction(f"Row '{key}' is not in this project's data; give feedback on a row shown on the Review page.")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "give feedback")
        if tx.version(project_id, int(model_version)) is None:
            raise InvalidAction(f"Project {project_id} has no model version {model_version}; the feedback is about "
                                "the explanation of a version that exists.")
        feedback_id = tx.add_explanation_feedback(project_id, row_key=key, model_version=int(model_version),
                                                  method=method, feature=feature, verdict=verdict, note=note,
                                                  created_by=actor)
        tx.add_event(project_id=project_id, actor=actor, action="explanation_feedback", object=f"row {key}",
                     after={"feedback": feedback_id, "model_version": int(model_version), "method": method,
                            "feature": feature, "verdict": verdict}, note=note)
    return feedback_id


# --------------------------------------------------------------------------- saved counterfactuals
COUNTERFACTUAL_SOURCES = ("what-if", "dice")


def save_counterfactual(store: Store, project_id: int, actor: str, *, row_key: str, model_version: int,
                        changes: dict[str, object], source: str = "what-if",
                        settings: counterfactual.RecourseSettings | None = None, note: str = "") -> int:
    """Keep a change to a row that flips its prediction under ``model_version`` (checked again here), with an event.

    Role "give feedback": it records what would change the outcome, like a verdict on an explanation, and
    changes no label. Refused (nothing written) when the change does not flip the prediction, changes an
    immutable column of ``settings`` or leaves an allowed range, or names an unknown row, feature or version.
    """
    actor = _check_actor(actor)
    project = store.project(project_id)
    key, note = str(row_key), (note or "").strip()
    if source not in COUNTERFACTUAL_SOURCES:
        raise InvalidAction(f"Unknown source '{source}'; choose one of {', '.join(COUNTERFACTUAL_SOURCES)}.")
    if len(note) > MAX_NOTE:
        raise InvalidAction(f"The note is {len(note):,} characters; keep it under {MAX_NOTE:,}.")
    unknown = [c for c in changes if c not in project.schema.features]
    if unknown:
        raise InvalidAction(f"{unknown} not a feature of this project's model; change some of "
                            f"{list(project.schema.features)}.")
    dataset = store.load_dataset(project)
    if key not in dataset.frame.index:
        raise InvalidAction(f"Row '{key}' is not in this project's data; save a counterfactual of a row shown on the "
                            "Review page.")
    try:
        model = store.load_model(project_id, int(model_version))
    except KeyError as exc:
        raise InvalidAction(f"Project {project_id} has no model version {model_version}; a counterfactual is checked "
                            "against a version that exists.") from exc
    row = dataset.features.loc[[key]]
    schema = project.schema
    before = predict_with_confidence(model, row, schema.classes).to_frame().iloc[0]
    after = predict_with_confidence(model, counterfactual.apply_changes(schema, row, changes), schema.classes)
    if after.labels[0] == before["predicted"]:
        raise InvalidAction(f"This change keeps v{model_version}'s prediction '{before['predicted']}' for row {key}; "
                            "only a change that flips it can be saved as a counterfactual.")
    settings = settings or counterfactual.RecourseSettings(desired=str(after.labels[0]))
    try:
        settings.validated(schema)
    except counterfactual.CounterfactualError as exc:
        raise InvalidAction(str(exc)) from exc
    valid, failed = counterfactual.check(model, schema, row, [changes], desired=settings.desired,
                                         immutable=settings.immutable, ranges=settings.ranges)
    if not valid:
        raise InvalidAction(f"Not saved (checked against v{model_version}): {'; '.join(failed)}.")
    result = {**valid[0].to_json(), "was": str(before["predicted"]), "was_confidence": float(before["confidence"])}
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "give feedback")
        saved_id = tx.add_counterfactual(project_id, row_key=key, model_version=int(model_version), source=source,
                                         settings_json=settings.to_json(), result_json=json.dumps(result), note=note,
                                         created_by=actor)
        tx.add_event(project_id=project_id, actor=actor, action="counterfactual_saved", object=f"row {key}",
                     before={"predicted": result["was"]},
                     after={"counterfactual": saved_id, "model_version": int(model_version), "source": source,
                            "predicted": result["predicted"], "changes": result["changes"]}, note=note)
    return saved_id


# --------------------------------------------------------------------------- accounts and exports
def add_user(store: Store, actor: str, *, name: str, role: str, password: str | None = None) -> users.User:
    """Create an account (admins only; the first account, made in local mode, must be an admin)."""
    actor = _check_actor(actor)
    name = _check_actor(name)
    try:
        users.check_role(role)
        password_hash = None if password is None else users.hash_password(password)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    with store.write() as tx:
        users.authorise(tx, actor, "manage users")
        if not tx.has_users() and role != "admin":
            raise InvalidAction("The first account must be an admin (it manages the others): add it with "
                                "--role admin.")
        if tx.user_role(name) is not None:
            raise InvalidAction(f"There is already an account named '{name}'; pick another name.")
        user = tx.add_user(name=name, role=role, password_hash=password_hash, created_by=actor)
        tx.add_event(project_id=None, actor=actor, action="user_added", object=f"user {name}",
                     after={"role": role, "password": password is not None})
        return user


def set_user(store: Store, actor: str, *, name: str, role: str | None = None, password: str | None = None) -> users.User:
    """Change an account's role or password (admins only); the last admin cannot be demoted."""
    actor = _check_actor(actor)
    changes: dict = {}
    try:
        if role is not None:
            changes["role"] = users.check_role(role)
        if password is not None:
            changes["password_hash"] = users.hash_password(password)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    with store.write() as tx:
        users.authorise(tx, actor, "manage users")
        before = tx.user_role(name)
        if before is None:
            raise InvalidAction(f"No account named '{name}'; list them with `users list`.")
        if before == "admin" and changes.get("role", "admin") != "admin" and tx.count_admins() == 1:
            raise InvalidAction(f"'{name}' is the last admin; make another admin first.")
        user = tx.update_user(name, **changes)
        tx.add_event(project_id=None, actor=actor, action="user_changed", object=f"user {name}",
                     before={"role": before}, after={"role": user.role, "password_changed": password is not None})
        return user


def record_export(store: Store, project_id: int, actor: str, *, what: str, rows: int) -> None:
    """Exports carry people's data: only admins may take them, and each one is in the audit trail."""
    actor = _check_actor(actor)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "export")
        tx.add_event(project_id=project_id, actor=actor, action="export", object=f"project {project_id}",
                     after={"what": what, "rows": rows})


# --------------------------------------------------------------------------- complaints and recourse
def complain(store: Store, project_id: int, actor: str, row_key: str, reason: str) -> Complaint:
    """Flag the decision about a row, with a reason (anyone with access, viewers too): the row is asked first.

    Only rows of the review pool: validation and held-out test labels never change, so a complaint
    about one could not be answered by changing it.
    """
    actor = _check_actor(actor)
    try:
        reason = complaints.check_text(reason, "reason")
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    project = store.project(project_id)
    key = _pool_row(store, project, row_key, "complain about")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "complain")
        complaint = tx.add_complaint(project_id, row_key=key, reason=reason, created_by=actor)
        tx.add_event(project_id=project_id, actor=actor, action="complaint", object=f"row {key}",
                     after={"complaint": complaint.id, "status": "open"}, note=reason)
        return complaint


def resolve_complaint(store: Store, project_id: int, actor: str, complaint_id: int, *, outcome: str, reason: str,
                      new_label: str | None = None) -> Complaint:
    """Answer a complaint: the decision is *kept*, or *changed* to ``new_label`` (recorded as a decision through
    the one decision path, in the same transaction); who, when and why are stored with the complaint."""
    actor = _check_actor(actor)
    project = store.project(project_id)
    try:
        reason = complaints.check_text(reason, "resolution note")
        complaints.check_outcome(outcome, new_label, project.schema.classes)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    _, given = store.pool_rows(project)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "resolve complaint")
        complaint = tx.complaint(project_id, int(complaint_id))
        if complaint is None:
            raise InvalidAction(f"No complaint #{complaint_id} in project {project_id}; list them with "
                                f"`python -m hitl_core complaints --project {project_id}`.")
        if complaint.status != "open":
            raise InvalidAction(f"Complaint #{complaint.id} was already resolved by {complaint.resolved_by} "
                                f"({complaint.resolution}); raise a new complaint to reopen the question.")
        decision_id = None
        if outcome == "changed":
            latest = tx.latest_decision(project_id, complaint.row_key)
            current = latest["new_label"] if latest else _given(given.get(complaint.row_key))
            if new_label == current:
                raise InvalidAction(f"Row {complaint.row_key} is already labelled {new_label}: resolve the complaint "
                                    "as 'kept', or pick the label it should have.")
            saved, _ = _record_in(tx, project_id, actor, [DecisionRequest(
                row_key=complaint.row_key, new_label=new_label, note=f"complaint #{complaint.id}: {reason}")], given)
            decision_id = saved[0].id
        resolved = tx.resolve_complaint(complaint.id, resolved_by=actor, resolution=outcome, note=reason,
                                        decision_id=decision_id)
        tx.add_event(project_id=project_id, actor=actor, action="complaint_resolved",
                     object=f"row {complaint.row_key}", before={"status": "open"},
                     after={"complaint": complaint.id, "outcome": outcome, "decision": decision_id}, note=reason)
        if decision_id is not None:
            _retrain_if_due(tx, tx.project(project_id), actor)
        return resolved


def _pool_row(store: Store, project: Project, row_key: str, verb: str) -> str:
    """The row key if the row is in the project's review pool; else a message saying where it is, or that it is not."""
    key = str(row_key).strip()
    pool_keys, given = store.pool_rows(project)
    if key in pool_keys:
        return key
    if key in given.index:
        raise InvalidAction(f"Row {key} is in the validation or held-out test split, whose labels never change (they "
                            f"keep the metrics honest), so there is no decision to {verb}; pick a row of the review "
                            "pool.")
    raise InvalidAction(f"No row '{key}' in project {project.id}; use the row key exactly as on the Review page.")


# --------------------------------------------------------------------------- withdrawal
def withdraw_rows(store: Store, project_id: int, actor: str, row_keys: Sequence[str], reason: str, *,
                  threads: int = 1) -> withdraw.Withdrawal:
    """Remove a data subject's rows (admins): from the data, every table about rows, the audit trail and old
    model files; the version trained without them becomes current, and the database file is compacted.

    Projects that share the stored dataset lose the rows too (they share its bytes). Every older
    version's model file is dropped (a fitted encoder can hold a value only those rows had): those
    versions stay listed but can never be loaded or restored. The event counts, never names, what went.
    """
    actor = _check_actor(actor)
    users.authorise(store, actor, "withdraw")  # refused before anything is read or trained
    try:
        reason = complaints.check_text(reason, "reason")
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    project = store.project(project_id)
    dataset = store.load_dataset(project)
    try:
        keys = withdraw.check_keys(row_keys, dataset.frame.index)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    values = withdraw.vanishing_values(dataset.frame, keys, project.schema)  # the keys and values only they hold
    secrets = withdraw.pattern(values)
    sharing = [p for p in store.projects() if p.dataset_hash == project.dataset_hash]
    kept = ~dataset.frame.index.isin(keys)
    frame, split = dataset.frame[kept], dataset.split[kept]
    trained = {p.id: _trained_without(store, p, Dataset(dataset.name, frame, p.schema, split), keys, threads)
               for p in sharing}
    stored = {pid: model_files.dumps(t.model) for pid, t in trained.items()}
    note = str(withdraw.redact(reason, secrets))
    totals: dict[str, int] = {}
    deleted = redacted = 0
    dropped, versions = {}, {}
    when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "withdraw")
        if tx.projects_with_dataset(project.dataset_hash) != [p.id for p in sharing]:
            raise InvalidAction("The project's data changed while the withdrawal was prepared (new rows or another "
                                "withdrawal); nothing was withdrawn: run it again.")
        for pid in trained:
            tx.lock_project(pid)
            for table, n in tx.delete_row_records(pid, keys).items():
                totals[table] = totals.get(table, 0) + n
            n_deleted, n_redacted = tx.scrub_events(pid, keys, values, secrets)
            deleted, redacted = deleted + n_deleted, redacted + n_redacted
            tx.cancel_running_jobs(pid, error="cancelled: rows were withdrawn while this job trained on them")
            before = tx.current_version(pid)
            dropped[pid] = tx.drop_model_files(pid, secrets, reason=f"model file dropped: trained on rows withdrawn "
                                                                    f"on {when}")
            tx.replace_dataset(pid, frame, split)
            tx.update_project(pid, current_version=None)  # every older model is gone: the new one becomes current
            version = _store_version(tx, pid, trained[pid], stored[pid], actor=actor, trigger="withdrawal", job=None)
            versions[pid] = version.version
            if tx.last_decision_count_after(pid, trained[pid].last_decision_id):  # decided while it trained
                _request_retrain(tx, tx.project(pid), actor, trigger="decisions during a withdrawal")
            tx.add_event(project_id=pid, actor=actor, action="withdrawal", object=f"project {pid}",
                         before={"rows": len(dataset.frame), "current": before.version if before else None},
                         after={"rows": len(frame), "withdrawn": len(keys), "records_deleted": sum(totals.values()),
                                "model_files_dropped": len(dropped[pid]), "current": version.version,
                                "projects": sorted(trained)}, note=note)
    return withdraw.Withdrawal(project_ids=tuple(sorted(trained)), n_rows=len(keys), removed=totals,
                               events_deleted=deleted, events_redacted=redacted, dropped_versions=dropped,
                               new_versions=versions, compacted=store.compact())


def _trained_without(store: Store, project: Project, dataset: Dataset, keys: list[str],
                     threads: int) -> loop.TrainedVersion:
    """The project's model on its labels without the withdrawn rows; counts leave out decisions about them."""
    trained = loop.train_snapshot(store, project, dataset=dataset, threads=threads)
    decisions = store.decisions(project.id, up_to=trained.last_decision_id)
    decisions = decisions[~decisions["row_key"].isin(keys)]
    return dataclasses.replace(trained, n_human_labels=loop.n_human_labelled(decisions), n_decisions=len(decisions))


# --------------------------------------------------------------------------- several people per row
def set_guidelines(store: Store, project_id: int, actor: str, *, guidelines: str,
                   reasons: Sequence[str]) -> Project:
    """The lead's labelling guidelines (Markdown, shown beside every row) and the list an override picks a
    reason from; the previous text is kept in the event, so every version can be read back."""
    actor = _check_actor(actor)
    guidelines = (guidelines or "").strip()
    if len(guidelines) > MAX_GUIDELINES:
        raise InvalidAction(f"The guidelines are {len(guidelines):,} characters; keep them under {MAX_GUIDELINES:,}.")
    cleaned = list(dict.fromkeys(r.strip() for r in reasons if r and r.strip()))
    if any(len(r) > MAX_REASON for r in cleaned):
        raise InvalidAction(f"Keep each override reason under {MAX_REASON} characters.")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "set guidelines")
        project = tx.project(project_id)
        before = {"guidelines": project.guidelines, "reasons": list(project.reasons)}
        after = {"guidelines": guidelines, "reasons": cleaned}
        if before == after:
            return project
        project = tx.update_project(project_id, guidelines=guidelines, reasons_json=json.dumps(cleaned))
        tx.add_event(project_id=project_id, actor=actor, action="guidelines", object=f"project {project_id}",
                     before=before, after=after)
        return project


def adjudicate(store: Store, project_id: int, actor: str, *, row_key: str, label: str,
               note: str = "") -> SavedDecision:
    """The lead settles a row people disagreed on: this label trains the model, every vote stays on record."""
    actor = _check_actor(actor)
    users.authorise(store, actor, "adjudicate")
    project = store.project(project_id)
    pool_keys, given = store.pool_rows(project)
    request = DecisionRequest(row_key=str(row_key), new_label=label, note=note)
    _validate(project.schema, pool_keys, [request])
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "adjudicate")
        votes = consensus.row_consensus(tx.row_decisions(project_id, request.row_key))
        before = None if votes.empty else votes.iloc[0]["label"]
        decision_id = tx.add_decision(project_id, Decision(
            row_key=request.row_key, new_label=label, action="accept" if label == before else "override",
            user=actor, old_label=before, note=note.strip(), kind="adjudication"))
        tx.add_event(project_id=project_id, actor=actor, action="adjudicate", object=f"row {request.row_key}",
                     before={"consensus": before}, after={"label": label, "decision": decision_id},
                     note=note.strip())
        _retrain_if_due(tx, tx.project(project_id), actor)
        return SavedDecision(decision_id, request.row_key, before, label, _given(given.get(request.row_key)),
                             "adjudication")


def lease_rows(store: Store, project_id: int, actor: str, candidates: Sequence[str], *, n: int,
               seconds: int = LEASE_SECONDS) -> list[str]:
    """Hand this person up to ``n`` queued rows they have not labelled, skipping rows that already have
    ``overlap`` people on them (their labels plus others' unexpired leases); their leases are renewed.

    Leases coordinate who sees which row; they change no label, so they write no event.
    """
    actor = _check_actor(actor)
    keys = [str(k) for k in candidates]
    with store.write(project_id) as tx:
        overlap = tx.project(project_id).overlap
        now = datetime.now(timezone.utc)
        tx.drop_expired_leases(project_id, now)
        labelled = tx.labellers(project_id, keys)
        held = tx.lease_holders(project_id, keys)
        taken = []
        for key in keys:
            people = labelled.get(key, set())
            if actor in people:
                continue
            if len(people | (held.get(key, set()) - {actor})) < overlap:
                taken.append(key)
                if len(taken) == n:
                    break
        tx.replace_leases(project_id, actor, taken, now + timedelta(seconds=seconds))
        return taken


# --------------------------------------------------------------------------- live workshop
def open_round(store: Store, project_id: int, actor: str, row_key: str) -> Round:
    """Put one row of the review pool on the shared screen (leads); a round still open in the project is closed.

    Only pool rows: a workshop vote is a label that can train the model, and validation and test
    labels never change.
    """
    actor = _check_actor(actor)
    users.authorise(store, actor, "run workshop")
    project = store.project(project_id)
    key = _pool_row(store, project, row_key, "vote on")
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "run workshop")
        for earlier in tx.open_workshop_rounds(project_id):
            _close_round_in(tx, project, earlier, actor)
        opened = tx.add_workshop_round(project_id, key, actor)
        tx.add_event(project_id=project_id, actor=actor, action="workshop_open", object=f"row {key}",
                     after={"round": opened.id})
        return opened


def reveal_round(store: Store, project_id: int, actor: str, round_id: int) -> Round:
    """Show the room the tally and the model's answer (leads); the answer shown is stored with the round.

    Voting stays open after the reveal: people may change their mind once they see the model, and
    such a vote records the prediction they saw (so the Team page's automation-bias check sees it).
    """
    actor = _check_actor(actor)
    users.authorise(store, actor, "run workshop")
    project = store.project(project_id)
    found = _round(store, project_id, round_id)
    shown = {}
    version = store.current_version(project_id)
    if version is not None and not found.revealed:
        row = store.load_dataset(project).features.loc[[found.row_key]]
        answer = predict_with_confidence(store.load_model(project_id, version.version), row,
                                         project.schema.classes).to_frame().iloc[0]
        shown = {"model_version": version.version, "predicted_label": str(answer["predicted"]),
                 "confidence": float(answer["confidence"])}
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "run workshop")
        current = _open_round_in(tx, project_id, round_id)
        if current.revealed:
            return current
        revealed = tx.set_workshop_round(current.id, revealed_at=datetime.now(timezone.utc), **shown)
        tx.add_event(project_id=project_id, actor=actor, action="workshop_reveal", object=f"row {current.row_key}",
                     after={"round": current.id, "votes": revealed.n_votes,
                            "tally": _tally_json(tx, project, current), **shown})
        return revealed


def close_round(store: Store, project_id: int, actor: str, round_id: int) -> Round:
    """End a round (leads): no more votes; its votes count now, so the retrain policy is asked once here."""
    actor = _check_actor(actor)
    users.authorise(store, actor, "run workshop")
    project = store.project(project_id)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "run workshop")
        current = _round(tx, project_id, round_id)
        if not current.is_open:
            return current
        closed = _close_round_in(tx, project, current, actor)
        if closed.n_votes:
            _retrain_if_due(tx, tx.project(project_id), actor)
        return closed


def cast_vote(store: Store, project_id: int, actor: str, round_id: int, label: str) -> Round:
    """Vote on the row on the shared screen (everyone, viewers too): stored as this person's label (kind
    "workshop"), so consensus counts it as their vote; a second vote in the round replaces the first.

    Accepted while the round is open, before and after the reveal; refused once the lead closed it.
    """
    actor = _check_actor(actor)
    users.authorise(store, actor, "vote")
    project = store.project(project_id)
    if label not in project.schema.classes:
        raise InvalidAction(f"'{label}' is not a class of '{project.schema.target}'; vote one of "
                            f"{', '.join(project.schema.classes)}.")
    _, given = store.pool_rows(project)
    with store.write(project_id) as tx:
        users.authorise(tx, actor, "vote")
        current = _open_round_in(tx, project_id, round_id)
        previous = tx.workshop_vote(current.id, actor)
        if previous == label:
            return current
        latest = tx.latest_decision(project_id, current.row_key, user=actor)
        before = latest["new_label"] if latest else _given(given.get(current.row_key))
        predicted = current.predicted_label if current.revealed else None  # what this person could see
        action = "accept" if label == (predicted if predicted is not None else before) else "override"
        decision_id = tx.add_decision(project_id, Decision(
            row_key=current.row_key, new_label=label, action=action, user=actor, old_label=before,
            predicted_label=predicted, confidence=current.confidence if predicted is not None else None,
            model_version=current.model_version if predicted is not None else project.current_version,
            note=f"workshop round #{current.id}", kind="workshop"))
        tx.put_workshop_vote(current, actor, label, decision_id)
        tx.add_event(project_id=project_id, actor=actor, action="workshop_vote", object=f"row {current.row_key}",
                     before={"vote": previous}, after={"vote": label, "round": current.id, "decision": decision_id,
                                                       "after_reveal": current.revealed})
        return tx.workshop_round(project_id, current.id)


def _round(tx: Tx | Store, project_id: int, round_id: int) -> Round:
    """The round, or a message saying there is no such round in this project."""
    found = tx.workshop_round(project_id, int(round_id))
    if found is None:
        raise InvalidAction(f"No workshop round #{round_id} in project {project_id}; the lead opens one on the "
                            "Workshop page.")
    return found


def _open_round_in(tx: Tx, project_id: int, round_id: int) -> Round:
    """The round, still open; a closed one is refused with what to do instead."""
    current = _round(tx, project_id, round_id)
    if not current.is_open:
        raise InvalidAction(f"Workshop round #{current.id} (row {current.row_key}) is closed; vote on the row the "
                            "lead has on the shared screen now.")
    return current


def _close_round_in(tx: Tx, project: Project, current: Round, actor: str) -> Round:
    """Stamp the round closed, with an event carrying its final tally."""
    closed = tx.set_workshop_round(current.id, closed_at=datetime.now(timezone.utc))
    tx.add_event(project_id=project.id, actor=actor, action="workshop_close", object=f"row {current.row_key}",
                 after={"round": current.id, "votes": closed.n_votes, "tally": _tally_json(tx, project, current)})
    return closed


def _tally_json(tx: Tx, project: Project, current: Round) -> dict[str, int]:
    """The round's votes per class, for the event (read inside the transaction)."""
    return {k: int(v) for k, v in workshop.tally(tx.workshop_votes(current.id), project.schema.classes).items()}
