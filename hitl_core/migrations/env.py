"""Alembic environment: always run on the connection handed over by :func:`upgrade_to_head`."""
from alembic import context

from hitl_core.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
