"""Keyboard shortcuts for the review page.

One `keydown` listener on the page (installed through `st.html`, which runs in the page itself, not in an
iframe) maps a key to a Streamlit button by its key: the button's container carries the class
`st-key-<key>`, so a press is exactly a click and the mouse and the keyboard share one code path.
Keys typed into a text field are left alone (Esc leaves the field). The listener runs in the capture
phase and stops the keys it handles, so Streamlit's own single-letter shortcuts (e.g. "c" for
clearing caches) do not fire on top of them.
"""

from __future__ import annotations

import json

import streamlit as st

_SCRIPT = """
<script>
(() => {
  const bindings = %s;
  const marker = %s;
  if (window.__studioReviewKeys) window.removeEventListener("keydown", window.__studioReviewKeys, true);
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  const runState = () => document.querySelector(marker)?.dataset.state;
  const scriptRunning = () =>
    document.querySelector('[data-testid="stApp"]')?.getAttribute("data-test-script-state") === "running";
  // Right after a rerun an element may still show its loading placeholder: retry for a moment.
  const act = (kind, key, deadline, done) => {
    const root = document.querySelector(".st-key-" + key);
    const target = root && root.querySelector(kind === "focus" ? "textarea, input" : "button");
    if (target) {
      if (kind === "focus") target.focus();
      else target.click();
      done(true);
    } else if (performance.now() < deadline) {
      setTimeout(() => act(kind, key, deadline, done), 25);
    } else {
      done(false);
    }
  };
  // Keys typed ahead wait for the rerun of the previous one, so each applies to what is on screen.
  const queue = [];
  let busy = false;
  const pump = () => {
    if (busy || !queue.length) return;
    busy = true;
    const [kind, key] = queue.shift();
    const before = runState();
    act(kind, key, performance.now() + 2000, (clicked) => {
      const deadline = performance.now() + 5000;
      const wait = () => {
        const now = runState();
        const finished = now && now !== before && !scriptRunning();
        if (!clicked || kind !== "run" || finished || performance.now() > deadline) {
          busy = false;
          pump();
        } else {
          setTimeout(wait, 10);
        }
      };
      wait();
    });
  };
  const handler = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const digit = /^Digit[0-9]$/.test(event.code) ? event.code.slice(5) : null;
    const base = digit || (event.key.length === 1 ? event.key.toLowerCase() : event.key);
    const action = bindings[(digit && event.shiftKey ? "Shift+" : "") + base];
    if (!action || !document.querySelector(".st-key-" + action[1])) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.repeat) return;
    queue.push(action);
    pump();
  };
  window.__studioReviewKeys = handler;
  window.addEventListener("keydown", handler, true);
})();
</script>
"""


def install(bindings: dict[str, tuple[str, str]], marker: str) -> None:
    """Install the listener.

    `bindings` maps a key ("j", "ArrowRight", "3", "Shift+3") to (kind, widget key): "run" clicks a
    button that reruns the page, "click" one that does not (e.g. opens a popover), "focus" focuses a
    text field. `marker` is a CSS selector of an element whose `data-state` changes at the end of each
    rerun: a key typed ahead waits for it, so each key applies to what is on screen.
    """
    payload = json.dumps(bindings).replace("<", "\\u003c")
    st.html(_SCRIPT % (payload, json.dumps(marker).replace("<", "\\u003c")), unsafe_allow_javascript=True)


_REFRESH = """
<script>
(() => {
  const key = %s;
  if (window.__studioRefreshWhenShown) {
    window.removeEventListener("focus", window.__studioRefreshWhenShown);
    document.removeEventListener("visibilitychange", window.__studioRefreshWhenShown);
  }
  let last = 0;
  const refresh = () => {
    if (document.visibilityState !== "visible" || performance.now() - last < 1000) return;
    last = performance.now();
    document.querySelector(".st-key-" + key + " button")?.click();
  };
  window.__studioRefreshWhenShown = refresh;
  window.addEventListener("focus", refresh);
  document.addEventListener("visibilitychange", refresh);
})();
</script>
"""


def refresh_when_shown(button_key: str) -> None:
    """Click the button `button_key` whenever the tab or window comes back into view (another tab may have
    changed what this one shows); at most once a second."""
    st.html(_REFRESH % json.dumps(button_key).replace("<", "\\u003c"), unsafe_allow_javascript=True)


def verdict_letters(verdicts: tuple[str, ...], taken: set[str]) -> list[str]:
    """A distinct letter per verdict, the first free one of its name ("correct" → c, "incorrect" → i)."""
    letters = []
    used = set(taken)
    for verdict in verdicts:
        letter = next((ch for ch in verdict.lower() if ch.isalpha() and ch not in used), "")
        used.add(letter)
        letters.append(letter)
    return letters
