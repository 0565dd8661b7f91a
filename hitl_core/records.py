"""Plain value objects passed between the store, the loop and the pages."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hitl_core.data import Schema

RETRAIN_POLICIES: dict[str, str] = {
    "every": "After every correction",
    "every_n": "After every N corrections",
    "manual": "On demand only",
}
DecisionAction = Literal["accept", "override"]
DecisionKind = Literal["decision", "vote", "adjudication", "workshop"]
DECISION_KINDS: dict[str, str] = {
    "decision": "a person's decision (the latest one wins)",
    "vote": "one person's label where several label each row (the majority wins)",
    "adjudication": "the lead's final label for a row people disagreed on",
    "workshop": "a vote cast in a live workshop",
}
EXPLANATION_METHODS: tuple[str, ...] = ("shap", "lime")
VERDICTS: tuple[str, ...] = ("helpful", "not helpful", "wrong")  # a reviewer's word on an explanation


@dataclass(frozen=True)
class Project:
    """A dataset with its column roles, the model family and how the loop retrains."""

    id: int
    name: str
    dataset_hash: str
    source: str
    schema: Schema
    model_kind: str
    retrain_policy: str
    retrain_every: int
    threshold: float
    seed: int
    created_at: datetime
    current_version: int | None = None  # the model pages show; moves only through hitl_core.actions / jobs
    costs_json: str | None = None  # hitl_core.costs.project_costs reads it; set only by actions.set_costs
    overlap: int = 1  # how many people label each row; above 1 each person's label is a vote (consensus)
    blind: bool = False  # reviewers do not see the model's prediction or confidence
    guidelines: str = ""  # labelling guidelines (Markdown) shown beside every row
    reasons: tuple[str, ...] = ()  # the reasons an override picks from (empty: none asked)


@dataclass(frozen=True)
class Decision:
    """One human decision about one row, with what the person saw when making it."""

    row_key: str
    new_label: str
    action: DecisionAction
    user: str = "local"
    old_label: str | None = None
    predicted_label: str | None = None
    confidence: float | None = None
    model_version: int | None = None
    note: str = ""
    kind: DecisionKind = "decision"
    reason: str | None = None


class _NotChecked:
    """The person's view is unknown (a script, a bulk import): record without a conflict check."""

    def __repr__(self) -> str:
        return "NOT_CHECKED"


NOT_CHECKED = _NotChecked()


@dataclass(frozen=True)
class DecisionRequest:
    """What a person decided about one row, with what they saw: the write path checks ``expected``.

    ``expected`` is the row's effective label as shown to the person (``None``: it was unlabeled);
    if someone changed the row since, the decision is refused as a conflict instead of overwriting.
    """

    row_key: str
    new_label: str
    expected: str | None | _NotChecked = NOT_CHECKED
    predicted_label: str | None = None
    confidence: float | None = None
    model_version: int | None = None
    note: str = ""
    reason: str | None = None  # why the person overrode the model, from the project's list


@dataclass(frozen=True)
class ModelVersion:
    """A trained model's record: how many human labels it saw and how it scored."""

    id: int
    project_id: int
    version: int
    model_kind: str
    n_human_labels: int
    n_train: int
    n_decisions: int
    trigger: str
    fit_seconds: float
    created_at: datetime
    validation: dict[str, float | None]
    test: dict[str, float | None]
    baselines: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)  # kind → split → metrics
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # true → predicted → count (validation)
    fairness: list[dict] = field(default_factory=list)  # validation fairness reports (hitl_core.fairness), JSON-ready
    last_decision_id: int = 0  # newest decision the training labels include: "labels at this version"
    status: VersionStatus = "current"
    status_reason: str = ""  # why a version was superseded, or what made it current
    job_id: int | None = None


VersionStatus = Literal["current", "superseded", "older"]  # older: was current once, since replaced
JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass(frozen=True)
class Job:
    """A retrain request taken by a worker; one running per project, later requests coalesce into one queued."""

    id: int
    project_id: int
    kind: str
    status: JobStatus
    trigger: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    error: str
    result_version: int | None


@dataclass(frozen=True)
class Event:
    """One change anybody made: who, when, what, on which object, and the value before and after."""

    id: int
    project_id: int | None
    actor: str
    created_at: datetime
    action: str
    object: str
    before: dict | None
    after: dict | None
    note: str


@dataclass(frozen=True)
class Batch:
    """New rows added to a project after it was created, with their drift against the training pool then."""

    id: int
    project_id: int
    number: int  # 1, 2, … per project (0 is the original data)
    source: str
    n_rows: int
    created_by: str
    created_at: datetime
    drift: dict | None  # DriftReport.to_json() + "n_reference"; prediction_shift carries the model "version"

    @property
    def drifted(self) -> list[str]:
        """Features that drifted in this batch, largest PSI first."""
        return list((self.drift or {}).get("drifted", []))


@dataclass(frozen=True)
class Round:
    """One row put to the room: open until the lead closes it; the tally is hidden until it is revealed."""

    id: int
    project_id: int
    row_key: str
    opened_by: str
    opened_at: datetime
    revealed_at: datetime | None
    closed_at: datetime | None
    model_version: int | None = None  # the model's answer as the room saw it, stored at the reveal
    predicted_label: str | None = None
    confidence: float | None = None
    n_votes: int = 0  # people who have voted so far (their labels stay hidden until the reveal)
    last_vote: int = 0  # the newest vote's decision id: moves with every vote, so screens re-read votes only then

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def revealed(self) -> bool:
        return self.revealed_at is not None

    @property
    def status(self) -> str:
        """Where the round is: voting, revealed (still open: people may change their vote) or closed."""
        return "closed" if not self.is_open else "revealed" if self.revealed else "voting"
