"""Fitted models as bytes that cannot run code: skops files, an explicit list of trusted types, a sha256.

A stored model used to be ``zlib(pickle(FittedModel))``, and unpickling runs whatever the bytes say:
anyone who could write the database could run code in the app. Now a model is a skops file
(``skops.io``: a zip of JSON and ``.npy`` arrays) holding a plain dict ``{kind, fit_seconds,
estimator}``; loading it

1. refuses any format but :data:`FORMAT` (an old pickle is never unpickled here),
2. refuses bytes whose sha256 differs from the one stored beside them (changed or cut after saving),
3. lets skops refuse any type that is neither trusted by skops by default (builtins, numpy arrays,
   scikit-learn estimators) nor listed in :data:`TRUSTED_TYPES` — before anything is built,
4. refuses a model whose shape is not one this app fits (kind ↔ estimator) or whose trees point
   outside themselves (skops warns that a crafted ``Tree``/``TreePredictor`` can make ``predict``
   read memory out of bounds; :func:`check_trees` does the bounds checks scikit-learn skips).

Each refusal is an :class:`UntrustedModel` naming the version and what to do; nothing in the file
runs. The sha256 catches corruption and a blob swapped without its checksum; it is not a signature
(whoever can write the row can write both), which is why steps 3 and 4 exist.
"""
from __future__ import annotations

import hashlib
import hmac
import zipfile
from dataclasses import dataclass

import numpy as np
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import Tree

from hitl_core.models import BASELINE_KINDS, MODEL_KINDS, FittedModel, _categories_as_text

FORMAT = "skops"  # model_versions.model_format; "pickle" marks a pre-0003 blob the upgrade could not convert
LEGACY_PICKLE = "pickle"

# Types beyond skops' defaults that this app's models hold, each reviewed; a test pins the list against
# every model kind, so a new type fails that test instead of being trusted silently.
TRUSTED_TYPES: tuple[str, ...] = (
    "hitl_core.models._categories_as_text",  # FunctionTransformer of the categorical columns (our own function)
    "numpy.dtype",  # dtypes SimpleImputer / OneHotEncoder remember (rebuilt from a dtype string)
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # hgb trees; bounds-checked on load
    "sklearn.tree._tree.Tree",  # random-forest trees; bounds-checked on load
)

_FINAL_STEP = {"logreg": LogisticRegression, "hgb": HistGradientBoostingClassifier, "rf": RandomForestClassifier}
_PREPROCESS_STEPS = (Pipeline, ColumnTransformer, SimpleImputer, StandardScaler, FunctionTransformer, OneHotEncoder)
_FIELDS = {"kind", "fit_seconds", "estimator"}
_WHAT_TO_DO = ("Nothing in it was run. Retrain the project to make a new version "
               "(or restore the database from a backup you trust).")


class UntrustedModel(ValueError):
    """A stored model refused on load (changed, unknown format, untrusted type); the message says which and why."""


@dataclass(frozen=True)
class ModelFile:
    """What the store writes for one model version."""

    blob: bytes
    sha256: str  # hex digest of ``blob``
    format: str = FORMAT


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def dumps(model: FittedModel) -> ModelFile:
    """Serialise a fitted model with skops; refuses (before storing) a model holding a type not in the list."""
    payload = {"kind": str(model.kind), "fit_seconds": float(model.fit_seconds), "estimator": model.estimator}
    blob = sio.dumps(payload, compression=zipfile.ZIP_DEFLATED, compresslevel=3)
    new = sorted(set(sio.get_untrusted_types(data=blob)) - set(TRUSTED_TYPES))
    if new:  # a programming error (a new estimator or step), not the user's: fail the retrain, store nothing
        raise TypeError(f"A '{model.kind}' model holds types not in model_files.TRUSTED_TYPES: {new}. "
                        "Review them and add them to the list (and its test) to store such models.")
    return ModelFile(blob=blob, sha256=sha256(blob))


def loads(blob: bytes, *, sha: str | None, format: str | None, where: str) -> FittedModel:
    """Rebuild a stored model, or raise :class:`UntrustedModel`; ``where`` names it ("version 3 of project 1")."""
    if format == LEGACY_PICKLE:
        raise UntrustedModel(f"Model {where} is a pickle from before the upgrade that could not be converted "
                             f"safely, and pickles are no longer loaded. {_WHAT_TO_DO}")
    if format != FORMAT:
        raise UntrustedModel(f"Model {where} is stored in an unknown format ({format!r}). {_WHAT_TO_DO}")
    if not sha or not hmac.compare_digest(sha256(blob), sha):
        raise UntrustedModel(f"Model {where} does not match the sha256 stored with it: its bytes were changed "
                             f"after it was saved. {_WHAT_TO_DO}")
    try:
        payload = sio.loads(blob, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:
        found = sorted(set(sio.get_untrusted_types(data=blob)) - set(TRUSTED_TYPES))
        raise UntrustedModel(f"Model {where} holds types this app does not trust: {', '.join(found)}. "
                             f"{_WHAT_TO_DO}") from error
    except Exception as error:  # not a zip, a broken schema, arrays of the wrong shape: all the same to the user
        raise UntrustedModel(f"Model {where} is not a readable model file ({type(error).__name__}). "
                             f"{_WHAT_TO_DO}") from error
    try:
        return _fitted_model(payload)
    except ValueError as error:
        raise UntrustedModel(f"Model {where} is not a model this app made: {error} {_WHAT_TO_DO}") from error
    except Exception as error:  # a missing or odd attribute inside: refused all the same
        raise UntrustedModel(f"Model {where} is not a model this app made ({type(error).__name__}). "
                             f"{_WHAT_TO_DO}") from error


def _fitted_model(payload: object) -> FittedModel:
    """The stored dict back as a FittedModel, after checking it is shaped as :func:`hitl_core.models.fit` makes."""
    if not isinstance(payload, dict) or set(payload) != _FIELDS:
        raise ValueError(f"it holds {type(payload).__name__} instead of {sorted(_FIELDS)}.")
    kind, estimator, seconds = payload["kind"], payload["estimator"], payload["fit_seconds"]
    if kind in BASELINE_KINDS:
        if type(estimator) is not DummyClassifier:
            raise ValueError(f"a '{kind}' baseline holds a {type(estimator).__name__}.")
    elif kind in MODEL_KINDS:
        if type(estimator) is not Pipeline or len(estimator) != 2 or type(estimator[-1]) is not _FINAL_STEP[kind]:
            raise ValueError(f"a '{kind}' model holds a {type(estimator).__name__}, not its pipeline.")
        _check_preprocess(estimator[0])
        check_trees(estimator[-1])
    else:
        raise ValueError(f"unknown model kind {kind!r}.")
    if not isinstance(seconds, float):
        raise ValueError("its fit time is not a number.")
    return FittedModel(kind=kind, estimator=estimator, fit_seconds=seconds)


def _check_preprocess(step: object) -> None:
    """Only the steps :func:`hitl_core.models.build_pipeline` uses, and our own function in the transformer."""
    if type(step) not in _PREPROCESS_STEPS:
        raise ValueError(f"its preprocessing holds a {type(step).__name__}.")
    if isinstance(step, FunctionTransformer) and (step.func is not _categories_as_text
                                                  or step.inverse_func is not None):
        raise ValueError("its preprocessing calls a function this app does not use.")
    parts = step.steps if isinstance(step, Pipeline) else step.transformers_ if isinstance(step, ColumnTransformer) \
        else []
    for part in parts:
        if not isinstance(part[1], str):  # ColumnTransformer's remainder is the string "drop"
            _check_preprocess(part[1])


def check_trees(estimator: object) -> None:
    """Bounds scikit-learn's tree code trusts without checking: every child index inside the tree and after its
    parent (no loop), every split feature inside the input, no native categorical splits (our pipelines one-hot
    encode). Raises ValueError on the first tree that breaks one."""
    if isinstance(estimator, RandomForestClassifier):
        for number, tree in enumerate(estimator.estimators_):
            if type(tree) is not DecisionTreeClassifier or type(tree.tree_) is not Tree:
                raise ValueError(f"tree {number} is a {type(tree).__name__}.")
            if tree.tree_.node_count > tree.tree_.capacity or tree.tree_.node_count < 1:
                raise ValueError(f"tree {number} counts more nodes than it holds.")
            nodes = tree.tree_.__getstate__()["nodes"]
            _check_nodes(nodes["left_child"], nodes["right_child"], nodes["feature"], nodes["left_child"] == -1,
                         estimator.n_features_in_, f"tree {number}")
    elif isinstance(estimator, HistGradientBoostingClassifier):
        if estimator.is_categorical_ is not None or estimator._preprocessor is not None or \
                np.any(estimator._bin_mapper.is_categorical_):
            raise ValueError("it declares native categorical features, which this app never fits.")
        for number, predictor in enumerate(p for iteration in estimator._predictors for p in iteration):
            if type(predictor) is not TreePredictor:
                raise ValueError(f"tree {number} is a {type(predictor).__name__}.")
            nodes = predictor.nodes
            if len(nodes) < 1 or np.any(nodes["is_categorical"]):
                raise ValueError(f"tree {number} is empty or splits on a native category.")
            _check_nodes(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), nodes["feature_idx"],
                         nodes["is_leaf"] != 0, estimator.n_features_in_, f"tree {number}")


def _check_nodes(left: np.ndarray, right: np.ndarray, feature: np.ndarray, leaf: np.ndarray, n_features: int,
                 name: str) -> None:
    inner = ~leaf
    index = np.arange(len(left))
    n = len(left)
    children_ok = (left[inner] > index[inner]) & (left[inner] < n) & (right[inner] > index[inner]) & (right[inner] < n)
    features_ok = (feature[inner] >= 0) & (feature[inner] < n_features)
    if not (children_ok.all() and features_ok.all()):
        raise ValueError(f"{name} points outside itself (a child or a feature index out of range).")
