"""Stored models become skops files with a sha256: after this revision no code path unpickles stored bytes.

Revision ID: 0003
Revises: 0002

Until now ``model_versions.model_blob`` held ``zlib(pickle(FittedModel))``. This revision converts
each one, once, in the upgrade's transaction: read the pickle, write it again with
:func:`hitl_core.model_files.dumps` (skops) and store the new blob with its sha256 and
``model_format = "skops"``. Reading those pickles is trusted *because this app wrote them before
the upgrade*, through ``Tx.add_model_version``; it is the last time a stored pickle is read.

Belt and braces, for a database someone else could have written before the upgrade: the pickles are
read by :class:`_AppPickles`, which resolves only the globals this app's models use (listed below)
and refuses any other (``os.system``, ``builtins.eval``, …) before calling it, and each converted
model must then load through :func:`hitl_core.model_files.loads` (trusted types, shape, tree bounds).
A blob that fails either is kept as it was with ``model_format = "pickle"`` and no sha256: the store
refuses it on load with a message to retrain, and the upgrade goes on. Downgrade writes the
skops files back as the pickles revision 0002's code reads.
"""
import io
import logging
import pickle
import zlib

import sqlalchemy as sa
from alembic import op

from hitl_core import model_files
from hitl_core.models import FittedModel

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_NUMPY = ("numpy._core.multiarray", "numpy.core.multiarray")  # numpy 2 writes _core; numpy 1 pickles said core
# (module, name) pairs the wave-1/0002 app's pickles reference (every model kind and baseline, found by
# recording find_class on them): classes built by their own __new__/__setstate__ and numpy's array rebuilders.
APP_PICKLE_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"),
    ("hitl_core.models", "FittedModel"),
    ("hitl_core.models", "_categories_as_text"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "float64"),
    *((module, name) for module in _NUMPY for name in ("_reconstruct", "scalar")),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pickle", "__bit_generator_ctor"), ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.bit_generator", "SeedSequence"), ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("sklearn._loss._loss", "CyHalfBinomialLoss"), ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"),
    ("sklearn._loss.link", "Interval"), ("sklearn._loss.link", "LogitLink"), ("sklearn._loss.link", "MultinomialLogit"),
    ("sklearn._loss.loss", "HalfBinomialLoss"), ("sklearn._loss.loss", "HalfMultinomialLoss"),
    ("sklearn.compose._column_transformer", "ColumnTransformer"),
    ("sklearn.dummy", "DummyClassifier"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingClassifier"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    ("sklearn.impute._base", "SimpleImputer"),
    ("sklearn.linear_model._logistic", "LogisticRegression"),
    ("sklearn.pipeline", "Pipeline"),
    ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.preprocessing._encoders", "OneHotEncoder"),
    ("sklearn.preprocessing._function_transformer", "FunctionTransformer"),
    ("sklearn.preprocessing._label", "LabelEncoder"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._tree", "Tree"),
})


class _AppPickles(pickle.Unpickler):
    """Unpickles only what this app's models are made of; any other global is refused before it is looked up."""

    def find_class(self, module: str, name: str):
        if (module, name) not in APP_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of a model this app writes")
        return super().find_class(module, name)


def _convert(blob: bytes, where: str) -> model_files.ModelFile:
    model = _AppPickles(io.BytesIO(zlib.decompress(blob))).load()
    if not isinstance(model, FittedModel):
        raise pickle.UnpicklingError(f"it holds a {type(model).__name__}, not a FittedModel")
    stored = model_files.dumps(model)
    model_files.loads(stored.blob, sha=stored.sha256, format=stored.format, where=where)  # the checks load will run
    return stored


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("model_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("model_format", sa.String(10), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, project_id, version FROM model_versions ORDER BY id")).all()
    for row_id, project_id, version in rows:  # one blob in memory at a time
        blob = connection.execute(sa.text("SELECT model_blob FROM model_versions WHERE id = :i"),
                                  {"i": row_id}).scalar()
        where = f"version {version} of project {project_id}"
        try:
            stored = _convert(blob, where)
            values = {"b": stored.blob, "s": stored.sha256, "f": stored.format}
        except Exception as error:  # noqa: BLE001 - any failure leaves the old bytes, refused on load
            log.warning("Model %s was not converted to skops (%s: %s); it will be refused on load until retrained.",
                        where, type(error).__name__, error)
            values = {"b": blob, "s": "", "f": model_files.LEGACY_PICKLE}
        connection.execute(sa.text("UPDATE model_versions SET model_blob = :b, model_sha256 = :s, model_format = :f "
                                   "WHERE id = :i"), {**values, "i": row_id})
    with op.batch_alter_table("model_versions") as batch:
        batch.alter_column("model_sha256", existing_type=sa.String(64), nullable=False)
        batch.alter_column("model_format", existing_type=sa.String(10), nullable=False)


def downgrade() -> None:
    """Back to revision 0002's ``zlib(pickle(FittedModel))``; versions that could not be converted stay as they were."""
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT id, project_id, version FROM model_versions WHERE model_format = :f ORDER BY id"),
        {"f": model_files.FORMAT}).all()
    for row_id, project_id, version in rows:
        found = connection.execute(sa.text("SELECT model_blob, model_sha256 FROM model_versions WHERE id = :i"),
                                   {"i": row_id}).first()
        model = model_files.loads(found[0], sha=found[1], format=model_files.FORMAT,
                                  where=f"version {version} of project {project_id}")
        blob = zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 3)
        connection.execute(sa.text("UPDATE model_versions SET model_blob = :b WHERE id = :i"), {"b": blob, "i": row_id})
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("model_format")
        batch.drop_column("model_sha256")
