"""Settings read once from environment variables, with safe local defaults."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where data lives and how big an upload may be.

    ``HITL_DATABASE_URL`` (default: SQLite file in the data folder), ``HITL_DATA_DIR``
    (default ``./data``), ``HITL_MAX_UPLOAD_MB`` (default 200), ``HITL_THREADS`` (threads for
    a model fit, default 1: more oversubscribes a small shared machine), ``HITL_EXPLAIN_ROWS``
    (most rows a global explanation samples, default 1000).
    """

    database_url: str
    data_dir: Path
    max_upload_mb: int = 200
    threads: int = 1
    explain_rows: int = 1000

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("HITL_DATA_DIR", "data")).expanduser()
        url = env.get("HITL_DATABASE_URL") or f"sqlite:///{(data_dir / 'hitl.db').as_posix()}"
        return cls(
            database_url=url,
            data_dir=data_dir,
            max_upload_mb=int(env.get("HITL_MAX_UPLOAD_MB", "200")),
            threads=max(1, int(env.get("HITL_THREADS", "1"))),
            explain_rows=max(10, int(env.get("HITL_EXPLAIN_ROWS", "1000"))),
        )
