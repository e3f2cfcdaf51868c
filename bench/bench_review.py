"""Review page: time from a key press to the next item being shown, next to a plain rerun of the page.

A real `streamlit run` and headless Chromium. The key press ("j", next item) reruns only the
annotation fragment; the plain rerun ("r", Streamlit's own rerun key) runs the whole page script.
Both are timed in the page: from the keydown event to the first animation frame after the new item
(or, for the rerun, the end-of-run marker) is in the DOM. Median over 50 items; reruns are interleaved.

    BENCH review_keypress: ratio=<plain rerun / key press> value=<key press ms> ms baseline=<rerun ms> ms

Then the same in review-sharing mode (bound to 0.0.0.0, reached through 127.0.0.1, a reviewer's invite link:
every key press also checks the invite again), reported as `review_keypress_sharing`.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import report

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 50
WARMUP = 5
RERUN_EVERY = 5

# Installed before any page script, so this keydown listener runs before the page's own.
TIMING = """
window.__keyAt = null; window.__shown = null; window.__ended = null;
window.addEventListener("keydown", () => { window.__keyAt = performance.now(); window.__shown = null; window.__ended = null; }, true);
const watch = () => {
  let item = null, state = null;
  new MutationObserver(() => {
    const card = document.querySelector(".rv-text");
    const marker = document.querySelector(".rv-state");
    if (card && card.dataset.item !== item) {
      item = card.dataset.item;
      requestAnimationFrame(() => { window.__shown = [item, performance.now()]; });
    }
    if (marker && marker.dataset.state !== state) {
      state = marker.dataset.state;
      requestAnimationFrame(() => { window.__ended = [state, performance.now()]; });
    }
  }).observe(document, {subtree: true, childList: true, attributes: true});
};
document.addEventListener("DOMContentLoaded", watch);
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(path: Path) -> str:
    """The database, and an invite link token for the reviewer "Bench"."""
    from core.access import invites
    from core.review import sampling as rs
    from db import connect
    from db.review import samples as sample_q
    from tests.review_fixtures import autism_project, fill_runs

    db = connect(path)
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=4)  # 72 synthetic observations
    sample_id = rs.create_sample(db, pid, [1, 2], {"kind": "fraction", "fraction": 1.0}, seed=1).sample_id
    reviewer = sample_q.add_reviewer(db, pid, "Bench")
    _, token = invites.create_invite(db, pid, sample_id, reviewer, days=1)
    db.conn.close()
    return token


def _serve(path: Path, port: int, log: Path, sharing: bool = False) -> subprocess.Popen:
    env = dict(os.environ, STUDIO_DB=str(path), STUDIO_WORKER="off")
    args = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    if sharing:
        from core.access import passwords, server

        env |= {"STUDIO_SHARING": "on", passwords.ENV_VAR: passwords.hash_password("bench password")}
        args = server.streamlit_command("0.0.0.0", port)[5:]  # the launcher's own options, after the script
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start: " + log.read_text())


def _ready(page) -> None:
    page.locator(".st-key-rv_counter").wait_for()
    page.wait_for_function("typeof window.__studioReviewKeys === 'function'")
    page.wait_for_function("!!document.querySelector('.st-key-rv_next button')")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def _press_next(page) -> float:
    before = page.evaluate("document.querySelector('.rv-text').dataset.item")
    page.keyboard.press("j")
    page.wait_for_function(
        "(b) => window.__shown && window.__shown[0] !== b && window.__keyAt !== null", arg=before, polling=5
    )
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    return page.evaluate("window.__shown[1] - window.__keyAt")


def _plain_rerun(page) -> float:
    before = page.evaluate("document.querySelector('.rv-state').dataset.state")
    page.keyboard.press("r")
    page.wait_for_function("(b) => window.__ended && window.__ended[0] !== b", arg=before, polling=5)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    return page.evaluate("window.__ended[1] - window.__keyAt")


def _measure(sharing: bool) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "studio.db"
        token = _prepare(path)
        port = _free_port()
        server = _serve(path, port, Path(tmp) / "streamlit.log", sharing)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(30_000)
                page.add_init_script(TIMING)
                url = f"http://127.0.0.1:{port}"
                if sharing:
                    page.goto(f"{url}/?invite={token}")
                else:
                    page.goto(url)
                    page.get_by_text("Review", exact=True).first.wait_for()
                    page.goto(url + "/review?reviewer=Bench")
                _ready(page)
                for _ in range(WARMUP):
                    _press_next(page)
                keys, reruns = [], []
                for i in range(ITEMS):
                    keys.append(_press_next(page))
                    if i % RERUN_EVERY == 0:
                        reruns.append(_plain_rerun(page))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    return keys, reruns


def main() -> None:
    for name, sharing in (("review_keypress", False), ("review_keypress_sharing", True)):
        keys, reruns = _measure(sharing)
        key_ms = statistics.median(keys)
        rerun_ms = statistics.median(reruns)
        print(
            f"    {name}: key press → next item: median {key_ms:.0f} ms (min {min(keys):.0f}, max {max(keys):.0f},"
            f" n={len(keys)}); plain rerun: median {rerun_ms:.0f} ms (n={len(reruns)})",
            flush=True,
        )
        report(name, key_ms, "ms", rerun_ms, "ms", ratio=rerun_ms / key_ms)


if __name__ == "__main__":
    main()
