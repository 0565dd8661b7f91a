"""Start the Streamlit app (optionally with a retrain worker beside it) and Debian's chromium for browser tests.

Browsers come from the `chromium` Debian package because `playwright install`
cannot download anything on CI.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unavailable(message: str, require_env: str) -> NoReturn:
    """Skip the test, or fail loudly when env `require_env`=1 says the dependency is mandatory (CI)."""
    if os.environ.get(require_env) == "1":
        raise RuntimeError(f"{message} ({require_env}=1 forbids skipping)")
    pytest.skip(message)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a test server or worker: ours plus `env`, one OpenMP thread (a busy 2-core box)."""
    return {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1"}


@contextlib.contextmanager
def streamlit_server(
    env: Mapping[str, str] | None = None, script: str = "app.py", timeout: float = 60.0, *,
    worker: bool = False, log_dir: Path | None = None,
) -> Iterator[str]:
    """Run `streamlit run script` from the repo root; yield its base URL once healthy.

    `env` adds variables (e.g. HITL_DATABASE_URL, HITL_DATA_DIR) to the current environment.
    `worker=True` also runs `python -m hitl_core worker` with the same environment, as
    `scripts/start.sh` does. `log_dir` keeps the processes' stderr in files there (to read after a
    failure); by default it goes to anonymous temporary files. Each process gets its own process
    group so every child dies with it.
    """
    with contextlib.ExitStack() as stack:
        if worker:
            stack.enter_context(retrain_worker(env, log_dir=log_dir))
        yield stack.enter_context(_streamlit(env, script, timeout, log_dir))


@contextlib.contextmanager
def retrain_worker(env: Mapping[str, str] | None = None, *, poll: float = 0.5,
                   log_dir: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m hitl_core worker --poll <poll>` from the repo root until the block ends (SIGTERM: it
    finishes the job in hand and leaves the workers table)."""
    cmd = [sys.executable, "-m", "hitl_core", "worker", "--poll", str(poll)]
    with _log_file(log_dir, "worker.log") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=child_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop_group(proc)


@contextlib.contextmanager
def _log_file(log_dir: Path | None, name: str) -> Iterator[IO[bytes]]:
    """A file, not a pipe: nobody drains a pipe while tests run, and a full pipe blocks the process."""
    if log_dir is None:
        with tempfile.TemporaryFile() as log:
            yield log
    else:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / name, "w+b") as log:
            yield log


@contextlib.contextmanager
def _streamlit(env: Mapping[str, str] | None, script: str, timeout: float, log_dir: Path | None) -> Iterator[str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",  # no reruns or inotify load while tests edit files
        "--browser.gatherUsageStats", "false",
    ]
    base_url = f"http://127.0.0.1:{port}"
    with _log_file(log_dir, "streamlit.log") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=child_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
        try:
            _wait_healthy(proc, base_url, timeout, log)
            yield base_url
        finally:
            _stop_group(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, timeout: float, log: IO[bytes]) -> None:
    """Poll /_stcore/health until it says "ok"; on exit or timeout, raise with the server's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        time.sleep(0.2)
    log.seek(0)
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not healthy after {timeout:.0f}s"
    raise RuntimeError(f"streamlit server {state}; stderr:\n{log.read().decode(errors='replace')}")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch Debian's headless chromium through Playwright (its own browsers are not downloadable)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found: install the Debian package `chromium`", "HITL_REQUIRE_BROWSER")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
