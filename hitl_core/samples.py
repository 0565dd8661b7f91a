"""Bundled sample datasets that load offline, each with the column roles a demo should start from.

* ``loan``: synthetic loan applications (seeded). The historical decisions carry a deliberately
  injected bias: at equal creditworthiness, applicants of ``group_b`` were approved less often
  (their decision score was lowered by ``GROUP_B_PENALTY`` on the log-odds scale), and women by a
  smaller ``FEMALE_PENALTY``. 15 % of applications are still pending (no label): they are the
  pool a reviewer works through.
* ``breast_cancer``: scikit-learn's Wisconsin diagnostic set (binary, numeric features).
* ``wine``: scikit-learn's wine recognition set (three classes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_wine

GROUP_B_PENALTY = 1.4
FEMALE_PENALTY = 0.4
PENDING_SHARE = 0.15


@dataclass(frozen=True)
class Sample:
    """A bundled table and the column roles it is meant to be used with."""

    name: str
    title: str
    description: str
    frame: pd.DataFrame
    target: str
    id_column: str | None = None
    sensitive: tuple[str, ...] = ()
    pii: tuple[str, ...] = field(default_factory=tuple)
    favourable: str | None = None  # the class people want (an approved loan): what fairness compares


def loan_applications(n_rows: int = 2400, seed: int = 7) -> pd.DataFrame:
    """Generate the loan table; same ``seed`` gives the same rows, labels and bias."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["group_a", "group_b"], size=n_rows, p=[0.7, 0.3])
    gender = rng.choice(["female", "male"], size=n_rows)
    age = rng.integers(21, 70, size=n_rows)
    employment = rng.choice(["salaried", "self_employed", "contract", "unemployed"], size=n_rows,
                            p=[0.55, 0.2, 0.17, 0.08])
    years_employed = np.where(employment == "unemployed", 0, np.minimum(age - 18, rng.gamma(2.0, 3.0, n_rows))).round(1)
    income = np.round(rng.lognormal(10.6, 0.45, n_rows) * np.where(employment == "unemployed", 0.35, 1.0), -2)
    loan_amount = np.round(rng.lognormal(9.6, 0.6, n_rows), -2)
    credit_score = np.clip(rng.normal(660, 75, n_rows), 300, 850).round()
    debt_to_income = np.clip(rng.beta(2, 5, n_rows) * 0.9, 0, 0.9).round(3)

    merit = (
        0.012 * (credit_score - 660)
        + 1.3 * np.log(income / loan_amount)
        - 4.0 * (debt_to_income - 0.25)
        + 0.06 * np.minimum(years_employed, 15)
        - 1.2 * (employment == "unemployed")
        - 1.0
    )
    bias = GROUP_B_PENALTY * (group == "group_b") + FEMALE_PENALTY * (gender == "female")
    approved = rng.random(n_rows) < 1 / (1 + np.exp(-(merit - bias)))
    decision = np.where(approved, "yes", "no").astype(object)
    decision[rng.random(n_rows) < PENDING_SHARE] = None

    ids = rng.permutation(np.arange(100000, 100000 + n_rows))
    return pd.DataFrame({
        "application_id": ids,
        "email": [f"applicant{i}@example.org" for i in ids],
        "age": age,
        "gender": gender,
        "group": group,
        "employment_type": employment,
        "years_employed": years_employed,
        "income": income,
        "loan_amount": loan_amount,
        "credit_score": credit_score,
        "debt_to_income": debt_to_income,
        "approved": decision,
    })


def _sklearn_frame(bunch) -> pd.DataFrame:
    frame = bunch.frame.copy()
    frame["target"] = np.asarray(bunch.target_names)[bunch.target]
    return frame


def load_sample(name: str) -> Sample:
    """Return a bundled sample by name (see ``SAMPLE_NAMES``)."""
    if name == "loan":
        return Sample(
            name="loan", title="Loan approvals (synthetic, biased)",
            description="2,400 loan applications; past decisions were biased against group_b. "
                        "15 % are pending (unlabeled).",
            frame=loan_applications(), target="approved", id_column="application_id",
            sensitive=("group", "gender"), pii=("email",), favourable="yes",
        )
    if name == "breast_cancer":
        return Sample(
            name="breast_cancer", title="Breast cancer diagnosis (Wisconsin)",
            description="569 tumour samples, 30 numeric measurements; malignant or benign.",
            frame=_sklearn_frame(load_breast_cancer(as_frame=True)), target="target",
        )
    if name == "wine":
        return Sample(
            name="wine", title="Wine cultivars (3 classes)",
            description="178 wines, 13 chemical measurements; which of three cultivars.",
            frame=_sklearn_frame(load_wine(as_frame=True)), target="target",
        )
    raise KeyError(f"Unknown sample '{name}'; choose one of {SAMPLE_NAMES}.")


SAMPLE_NAMES = ("loan", "breast_cancer", "wine")
