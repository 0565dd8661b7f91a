"""Smoke tests for the test infrastructure itself, so a broken CI machine fails here, clearly."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text

from tests.support.postgres import postgres_server
from tests.support.server import REPO_ROOT, free_port, launch_chromium

ARTIFACTS = REPO_ROOT / "test-artifacts"


def test_postgres_server_serves_sqlalchemy() -> None:
    with postgres_server() as pg:
        engine = create_engine(pg.url)
        try:
            with engine.begin() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
                conn.execute(text("CREATE TABLE probe (id integer PRIMARY KEY, note text)"))
                conn.execute(text("INSERT INTO probe VALUES (1, 'hello')"))
                assert conn.execute(text("SELECT note FROM probe")).scalar_one() == "hello"
                conn.execute(text("DROP TABLE probe"))
        finally:
            engine.dispose()
    assert not pg.root.exists()


def test_chromium_renders_local_page(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>infra</title><h1 id='msg'>chromium works</h1>")
    port = free_port()
    http = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "infra-chromium.png"
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/index.html")
                assert page.title() == "infra"
                assert page.inner_text("#msg") == "chromium works"
                page.screenshot(path=str(shot))
            finally:
                browser.close()
        assert shot.stat().st_size > 0
    finally:
        http.terminate()
        http.wait(timeout=10)


def _wait_http(url: str, timeout: float = 10.0) -> None:
    """Wait until the http.server subprocess accepts requests."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
