"""Alembic migrations of the store's schema; :func:`upgrade_to_head` runs whenever a store is opened.

A database made before Alembic (main up to 2026-12, tables but no ``alembic_version``) is stamped
as revision ``0001`` (that schema) and upgraded from there, keeping every row.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
BASELINE = "0001"
PG_MIGRATION_LOCK = 727_001  # advisory lock id: one process migrates, the others wait and find head


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest schema, in one transaction that other openers wait for."""
    config = alembic_config()
    with engine.execution_options(hitl_write=True).begin() as connection:  # SQLite: BEGIN IMMEDIATE
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "projects" in tables and "alembic_version" not in tables:
            command.stamp(config, BASELINE)
        command.upgrade(config, "heads")  # several heads while branches are open; a merge revision joins them
