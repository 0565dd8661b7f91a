"""Stored models cannot run code: skops files, explicit trusted types, a sha256, and a one-time migration of pickles."""
from __future__ import annotations

import ast
import hashlib
import io
import os
import pickle
import shutil
import sqlite3
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from hitl_core import model_files
from hitl_core.data import Schema, check
from hitl_core.model_files import TRUSTED_TYPES, UntrustedModel
from hitl_core.models import BASELINE_KINDS, MODEL_KINDS, FittedModel, fit, predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import start_wine

WAVE1 = Path(__file__).resolve().parents[1] / "fixtures" / "wave1.db"  # pickled models, made before Alembic
ALL_KINDS = [*MODEL_KINDS, *BASELINE_KINDS]


# --------------------------------------------------------------------------- what an attacker would plant
class Tripwire:
    """Leaves a marker file when built: proves whether loading constructed it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).touch()
        self.__dict__.update(state)


class Boom:
    """The old attack: a pickle whose __reduce__ runs a shell command when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _double(frame):  # a function of the test module: not one this app trusts
    return frame


def _put(db: Path, version: int, blob: bytes, *, sha: str | None = None, fmt: str = "skops") -> None:
    """Overwrite a stored model the way anyone with write access to the database could."""
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE model_versions SET model_blob = ?, model_sha256 = ?, model_format = ? "
                           "WHERE version = ?", (blob, hashlib.sha256(blob).hexdigest() if sha is None else sha,
                                                 fmt, version))


def _fits(sample: Sample, schema: Schema, kind: str) -> tuple[FittedModel, object]:
    labelled = sample.frame[sample.frame[sample.target].notna()]
    X = labelled[list(schema.features)]
    return fit(kind, schema, X, labelled[sample.target].astype(str), seed=3), X


@pytest.fixture(scope="module")
def samples(wine: Sample, wine_schema: Schema, loan: Sample, loan_schema: Schema) -> dict[str, tuple[Sample, Schema]]:
    """Wine: numeric, three classes. Loan: categoricals with missing values, an ID, sensitive columns."""
    return {"wine": (wine, wine_schema), "loan": (loan, loan_schema)}


# --------------------------------------------------------------------------- round trip and the trusted list
@pytest.mark.parametrize("sample_name", ["wine", "loan"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_model_kind_round_trips_and_predicts_the_same_probabilities(samples, sample_name: str,
                                                                          kind: str) -> None:
    sample, schema = samples[sample_name]
    model, X = _fits(sample, schema, kind)
    stored = model_files.dumps(model)
    loaded = model_files.loads(stored.blob, sha=stored.sha256, format=stored.format, where="version 1 of project 1")
    assert stored.sha256 == hashlib.sha256(stored.blob).hexdigest() and stored.format == "skops"
    assert zipfile.is_zipfile(io.BytesIO(stored.blob))  # a skops file, not a pickle
    assert (loaded.kind, loaded.fit_seconds) == (model.kind, model.fit_seconds)
    before = predict_with_confidence(model, X, schema.classes).proba
    np.testing.assert_array_equal(predict_with_confidence(loaded, X, schema.classes).proba, before)


def test_the_trusted_types_are_exactly_the_ones_our_models_hold(samples) -> None:
    """A new type in a model must fail here (and be reviewed), never be trusted silently."""
    found: set[str] = set()
    for sample, schema in samples.values():
        for kind in ALL_KINDS:
            found |= set(sio.get_untrusted_types(data=model_files.dumps(_fits(sample, schema, kind)[0]).blob))
    assert found == set(TRUSTED_TYPES)
    assert TRUSTED_TYPES == (
        "hitl_core.models._categories_as_text",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    )


def test_a_model_holding_a_type_not_in_the_list_is_not_stored(wine: Sample, wine_schema: Schema) -> None:
    model, X = _fits(wine, wine_schema, "logreg")
    pipeline = Pipeline([("preprocess", FunctionTransformer(_double)), ("model", model.estimator[-1])])
    odd = FittedModel(kind="logreg", fit_seconds=0.1, estimator=pipeline)
    with pytest.raises(TypeError, match="test_model_files._double"):
        model_files.dumps(odd)


# --------------------------------------------------------------------------- refusals through the store
def test_a_tampered_model_is_refused_saying_which_version_and_what_to_do(store: Store, tmp_path: Path,
                                                                         wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    assert store.load_model(project.id, 1).kind == "logreg"
    with sqlite3.connect(tmp_path / "hitl.db") as connection:
        blob, sha = connection.execute("SELECT model_blob, model_sha256 FROM model_versions").fetchone()
    flipped = bytearray(blob)
    flipped[len(flipped) // 2] ^= 0x01
    _put(tmp_path / "hitl.db", 1, bytes(flipped), sha=sha)
    with pytest.raises(UntrustedModel, match=rf"Model version 1 of project {project.id} does not match the sha256 "
                                             r"stored with it.*Nothing in it was run\. Retrain the project"):
        store.load_model(project.id, 1)


@pytest.mark.parametrize("planted", ["a class of its own", "os.system in a pipeline step"])
def test_a_skops_file_with_an_untrusted_type_is_refused_before_anything_is_built(
        store: Store, tmp_path: Path, wine: Sample, wine_schema: Schema, planted: str) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    marker = tmp_path / "MARKER"
    if planted == "a class of its own":
        estimator, named = Tripwire(str(marker)), "tests.core.test_model_files.Tripwire"
    else:
        estimator = Pipeline([("preprocess", FunctionTransformer(os.system, kw_args={})),
                              ("model", DummyClassifier())])
        named = f"{os.system.__module__}.system"
    blob = sio.dumps({"kind": "logreg", "fit_seconds": 0.1, "estimator": estimator})
    _put(tmp_path / "hitl.db", 1, blob)  # the sha matches: whoever can write the row can write both
    with pytest.raises(UntrustedModel, match=rf"version 1 of project {project.id} holds types this app does not "
                                             rf"trust: .*{named}"):
        store.load_model(project.id, 1)
    assert not marker.exists()
    if planted == "a class of its own":  # the tripwire is real: trusted, it would have fired
        sio.loads(blob, trusted=["tests.core.test_model_files.Tripwire"])
        assert marker.exists()


@pytest.mark.parametrize("fmt, sha", [("skops", "matching"), ("skops", "original"), ("pickle", "matching"),
                                      ("joblib", "matching")])
def test_a_pickle_put_into_the_database_is_refused_and_never_run(store: Store, tmp_path: Path, wine: Sample,
                                                                 wine_schema: Schema, fmt: str, sha: str) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    marker = tmp_path / "MARKER"
    blob = zlib.compress(pickle.dumps(Boom(marker)))
    with sqlite3.connect(tmp_path / "hitl.db") as connection:
        original = connection.execute("SELECT model_sha256 FROM model_versions").fetchone()[0]
    _put(tmp_path / "hitl.db", 1, blob, sha=original if sha == "original" else None, fmt=fmt)
    with pytest.raises(UntrustedModel, match=rf"Model version 1 of project {project.id} .*Nothing in it was run"):
        store.load_model(project.id, 1)
    assert not marker.exists()


def test_a_forest_whose_tree_points_outside_itself_is_refused(wine: Sample, wine_schema: Schema) -> None:
    """skops warns a crafted Tree can make predict read out of bounds: the bounds are checked on load."""
    model, _ = _fits(wine, wine_schema, "rf")
    tree = model.estimator[-1].estimators_[0]
    cls, args, state = tree.tree_.__reduce__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"]["left_child"][0] = 10**6
    crafted = cls(*args)
    crafted.__setstate__(state)
    tree.tree_ = crafted
    stored = model_files.dumps(model)  # only known types: the file itself looks fine
    with pytest.raises(UntrustedModel, match="version 2 of project 1 is not a model this app made: tree 0 points "
                                             "outside itself"):
        model_files.loads(stored.blob, sha=stored.sha256, format="skops", where="version 2 of project 1")


def test_gradient_boosting_with_a_feature_index_out_of_range_is_refused(wine: Sample, wine_schema: Schema) -> None:
    model, _ = _fits(wine, wine_schema, "hgb")
    nodes = model.estimator[-1]._predictors[0][0].nodes
    nodes["feature_idx"][np.flatnonzero(nodes["is_leaf"] == 0)[0]] = 500
    stored = model_files.dumps(model)
    with pytest.raises(UntrustedModel, match="tree 0 points outside itself"):
        model_files.loads(stored.blob, sha=stored.sha256, format="skops", where="version 2 of project 1")


@pytest.mark.parametrize("payload, reason", [
    ({"kind": "logreg", "fit_seconds": 0.1, "estimator": DummyClassifier()},
     "a 'logreg' model holds a DummyClassifier"),
    ({"kind": "rm -rf", "fit_seconds": 0.1, "estimator": DummyClassifier()}, "unknown model kind"),
    ([1, 2, 3], "it holds list"),
])
def test_a_file_not_shaped_like_our_models_is_refused(payload, reason: str) -> None:
    blob = sio.dumps(payload)
    with pytest.raises(UntrustedModel, match=f"not a model this app made: {reason}"):
        model_files.loads(blob, sha=hashlib.sha256(blob).hexdigest(), format="skops", where="version 1 of project 1")


def test_no_engine_module_reads_pickles_except_the_one_time_migration() -> None:
    """After migration 0003 no code path unpickles stored bytes; joblib/dill/cloudpickle would unpickle too."""
    root = Path(__file__).resolve().parents[2] / "hitl_core"
    readers = {"pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve"}
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [str(path.relative_to(root)) for name in names if name.split(".")[0] in readers]
    assert found == ["migrations/versions/0003_skops_models.py"]


# --------------------------------------------------------------------------- the one-time migration
def _wave1_models(path: Path) -> dict[int, FittedModel]:
    """The fixture's pickles, read directly: the trusted path (this app wrote them), to compare against."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT version, model_blob FROM model_versions ORDER BY version").fetchall()
    return {version: pickle.loads(zlib.decompress(blob)) for version, blob in rows}


def test_the_wave1_fixture_migrates_and_its_versions_predict_as_before(tmp_path: Path) -> None:
    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)
    before = _wave1_models(path)
    store = Store(f"sqlite:///{path}")
    try:
        project = store.projects()[0]
        features = store.load_dataset(project).features
        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT version, model_blob, model_sha256, model_format FROM model_versions "
                                      "ORDER BY version").fetchall()
        assert [(version, fmt) for version, _, _, fmt in rows] == [(1, "skops"), (2, "skops")]
        for version, blob, sha, _ in rows:
            assert zipfile.is_zipfile(io.BytesIO(blob)) and sha == hashlib.sha256(blob).hexdigest()
            loaded = store.load_model(project.id, version)
            assert (loaded.kind, loaded.fit_seconds) == (before[version].kind, before[version].fit_seconds)
            np.testing.assert_array_equal(
                predict_with_confidence(loaded, features, project.schema.classes).proba,
                predict_with_confidence(before[version], features, project.schema.classes).proba)
    finally:
        store.engine.dispose()


def test_a_pickle_planted_before_the_upgrade_is_not_run_by_the_migration(tmp_path: Path) -> None:
    path, marker = tmp_path / "wave1.db", tmp_path / "MARKER"
    shutil.copy(WAVE1, path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE model_versions SET model_blob = ? WHERE version = 1",
                           (zlib.compress(pickle.dumps(Boom(marker))),))
    store = Store(f"sqlite:///{path}")
    try:
        assert not marker.exists()
        project = store.projects()[0]
        with pytest.raises(UntrustedModel, match="version 1 of project 1 is a pickle from before the upgrade that "
                                                 "could not be converted safely.*Retrain the project"):
            store.load_model(project.id, 1)
        assert not marker.exists()
        assert store.load_model(project.id, 2).kind == "logreg"  # the honest version was converted
    finally:
        store.engine.dispose()
