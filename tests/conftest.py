"""Shared fixtures: a temporary database per test, and a real `streamlit run` for browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """Every test gets its own database file; the real data/studio.db is never touched."""
    monkeypatch.setenv("STUDIO_DB", str(tmp_path / "studio.db"))
    monkeypatch.setenv("STUDIO_WORKER", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield


@pytest.fixture
def db(tmp_path):
    from db import connect

    database = connect(tmp_path / "studio.db")
    yield database
    database.conn.close()


@pytest.fixture
def seeded_db(db):
    """A database with the two default projects (HoC with its real sentences)."""
    from core.projects.defaults import ensure_default_projects

    ensure_default_projects(db)
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(
    db_file: Path,
    log_file: Path,
    own_group: bool = False,
    address: str = "127.0.0.1",
    extra_args: tuple[str, ...] = (),
    extra_env: dict | None = None,
) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port of `address` with this database and the worker on; the URL
    returned is always on 127.0.0.1 (a server bound to all interfaces is reached through loopback only).

    With `own_group`, the server starts its own process group, so one signal reaches the worker too."""
    port = free_port()
    env = {**os.environ, "STUDIO_DB": str(db_file), "STUDIO_WORKER": "on", **(extra_env or {})}  # extra_env wins
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            address,
            *extra_args,
        ],
        cwd=ROOT,
        env=env,
        stdout=open(log_file, "a"),
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start: " + log_file.read_text())


@pytest.fixture
def studio_server(tmp_path):
    """A real app server with a temporary database (tmp_path/studio.db) and a live worker; yields its URL."""
    proc, url = start_streamlit(tmp_path / "studio.db", tmp_path / "streamlit.log")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def browser_page():
    """A headless Debian Chromium page driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()
