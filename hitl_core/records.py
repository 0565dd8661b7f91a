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
