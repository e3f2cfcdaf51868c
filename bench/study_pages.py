"""Driving the app's pages for the study scripts (`bench.study`, `bench.study_grid`): the app on its own
`streamlit run app.py` (127.0.0.1, a free port, a database in the output folder), a headless Debian Chromium
on it, patient helpers for Streamlit widgets, and a clock for the steps."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Step:
    name: str
    seconds: float
    note: str = ""


class StepClock:
    """Runs the steps of a study one after another, printing and keeping how long each took."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.started = time.monotonic()

    def __call__(self, name: str, fn: Callable, note: str = ""):
        print(f"step: {name}", flush=True)
        t = time.monotonic()
        result = fn()
        self.steps.append(Step(name, time.monotonic() - t, note))
        print(f"  {name}: {self.steps[-1].seconds:.0f} s", flush=True)
        return result

    def total(self) -> Step:
        return Step("total", time.monotonic() - self.started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(out: Path, worker: bool = True) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        STUDIO_DB=str(out / "studio.db"),
        STUDIO_WORKER="on" if worker else "off",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    log = open(out / "streamlit.log", "w")
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
            "127.0.0.1",
            "--server.headless",
            "true",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((out / "streamlit.log").read_text()) from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start: " + (out / "streamlit.log").read_text())


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Driver:
    """Small, patient helpers for Streamlit pages (reruns can land at any moment)."""

    def __init__(self, page, url: str, out: Path):
        self.page, self.url, self.out = page, url, out

    def first_page(self) -> None:
        """Open the app and wait for its first page (the first start seeds the default projects)."""
        self.page.goto(self.url)
        expect(self.page.get_by_role("heading", name=re.compile("^Data · "))).to_be_visible(timeout=600_000)
        self.idle()

    def idle(self) -> None:
        self.page.wait_for_timeout(300)
        expect(self.page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=120_000)

    def open(self, name: str, heading: str | re.Pattern) -> None:
        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
        expect(self.page.get_by_role("heading", name=heading).first).to_be_visible(timeout=120_000)
        self.idle()

    def shot(self, name: str, full: bool = True) -> Path:
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full)
        return path

    def fill(self, label: str, value: str) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
        self.idle()

    def _pick(self, label: str, option: str | re.Pattern, clear: bool = False, close: bool = False) -> None:
        """Open the select or multiselect `label` and click `option`, retried: a rerun can close the list or
        replace the widget between the click that opens it and the one that picks. `clear` first removes every
        chosen option of a multiselect; `close` closes its list afterwards (a multiselect stays open)."""
        box = self.page.get_by_label(label, exact=True)
        for _ in range(5):
            self.idle()
            if clear:
                box.click()
                for _ in range(12):  # Backspace in an empty multiselect input removes the last chosen option
                    box.press("Backspace")
                self.idle()
            box.click()
            try:
                self.page.get_by_role("option", name=option, exact=isinstance(option, str)).first.click(timeout=5_000)
            except PlaywrightTimeout:
                self.page.keyboard.press("Escape")
                continue
            if close:
                self.page.keyboard.press("Escape")
            self.idle()
            return
        raise RuntimeError(f"Could not choose {option!r} in {label!r}")

    def choose(self, label: str, option: str) -> None:
        self._pick(label, option)

    def only_option(self, label: str, starts_with: str) -> None:
        """Leave one option chosen in a multiselect: the one whose text starts with `starts_with`."""
        self._pick(label, re.compile("^" + re.escape(starts_with) + r"(?!\d)"), clear=True, close=True)

    def add_option(self, label: str, option: str) -> None:
        """Add one option to a multiselect."""
        self._pick(label, option, close=True)

    def metric(self, label: str) -> int:
        text = self.page.get_by_test_id("stMetric").filter(has_text=label).first.inner_text()
        return int(re.sub(r"[^\d]", "", text.split("\n")[-1]) or 0)

    def wait_jobs_idle(self, timeout_s: float, what: str) -> None:
        """On the Jobs page: until nothing of this project is queued or running."""
        self.open("Jobs", "Jobs")
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(5_000)
            try:
                busy = self.metric("Queued") + self.metric("Running")
            except PlaywrightTimeout:
                continue
            quiet = quiet + 1 if busy == 0 else 0
            if quiet >= 2:
                failed = self.metric("Failed")
                print(f"  jobs idle after {what}: {self.metric('Done')} done, {failed} failed", flush=True)
                return
        raise RuntimeError(f"Jobs still running after {timeout_s:.0f} s ({what})")


@contextmanager
def studio_browser(out: Path, worker: bool = True, error_shot: str = "error") -> Iterator[Driver]:
    """The app on its own server and a headless Chromium page on it; when a step fails, the page as it was is
    kept as `<error_shot>.png` before the error goes on. The server stops in every case."""
    proc, url = start_server(out, worker)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(60_000)
            try:
                yield Driver(page, url, out)
            except Exception:
                page.screenshot(path=str(out / f"{error_shot}.png"), full_page=True)
                raise
            finally:
                context.close()
                browser.close()
    finally:
        stop_server(proc)
