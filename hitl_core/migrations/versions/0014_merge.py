"""Join the branches of the 2026-12 features (batches, complaints, costs, briefs, counterfactuals, explanation
feedback, gold rows, teams and workshops) into one head. No schema change.

Revision ID: 0014
Revises: 0005, 0006, 0007, 0008, 0009, 0010, 0011, 0013
"""
revision = "0014"
down_revision = ("0005", "0006", "0007", "0008", "0009", "0010", "0011", "0013")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
