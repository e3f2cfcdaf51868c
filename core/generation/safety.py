"""What keeps a run from costing more than it should: the budget and the circuit breaker.

Budget: every call reserves its worst case (its prompt at the input price and its whole token limit at the
output price) before it is sent and settles at its real cost when it is answered, so spent + in flight
never passes `max_cost_usd`. When the next call would pass it, no more calls are launched and the run
pauses ("paused: budget reached") until the budget is raised.

Circuit breaker: a wrong key, an exhausted quota or an unknown model fails every call the same way, so the
first such answer stops the run with one message that says what to fix; any other kind of failure stops it
after `breaker_after` of that kind in a row. Cells are left queued, so Resume carries on after the fix.
"""

from __future__ import annotations

from core.generation.client import CallResult

BUDGET_REASON = "paused: budget reached"


class Budget:
    """Spent and reserved dollars of one run; no limit when the limit or the price is unknown."""

    def __init__(self, limit_usd: float | None, spent_usd: float):
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0

    def reserve(self, worst_case_usd: float | None) -> bool:
        if self.limit_usd is None or worst_case_usd is None:
            return True
        if self.spent_usd + self.reserved_usd + worst_case_usd > self.limit_usd + 1e-12:
            return False
        self.reserved_usd += worst_case_usd
        return True

    def settle(self, worst_case_usd: float | None, cost_usd: float | None) -> None:
        if self.limit_usd is not None and worst_case_usd is not None:
            self.reserved_usd -= worst_case_usd
        self.spent_usd += cost_usd or 0.0


def fatal_problem(result: CallResult, model: str, key_source: str) -> str | None:
    """The message for a failure that every further call would repeat (wrong key, no quota, unknown
    model), or None."""
    if result.ok:
        return None
    status = result.http_status
    text = f"{result.error or ''} {result.raw_response or ''}".lower()
    if status in (401, 403) or "invalid_api_key" in text or "incorrect api key" in text:
        return (
            f"Stopped: the server refused the API key ({result.error}). Fix: put a valid key in {key_source}, "
            "then press Resume."
        )
    if "insufficient_quota" in text or "exceeded your current quota" in text:
        return (
            f"Stopped: the account has no quota left ({result.error}). Fix: add credit or raise the spending "
            "limit with the provider, then press Resume."
        )
    if status in (400, 404) and (
        "model_not_found" in text or ("model" in text and ("does not exist" in text or "not found" in text))
    ):
        return (
            f"Stopped: the server does not know the model {model!r} ({result.error}). Fix: correct the model id "
            "on the LLM connections page (Test connection lists the server's models), then start a new run."
        )
    return None


def failure_kind(result: CallResult | None, parse_error: str | None = None) -> str | None:
    """A short name for what went wrong with a call, to count failures of one kind in a row."""
    if result is None or (result.ok and parse_error is None):
        return None
    if result.ok:
        return "answers with no observations"
    if result.http_status:
        return f"HTTP {result.http_status}"
    return (result.error or "error").split(":")[0]


class Breaker:
    """Counts failures of one kind in a row (a success or another kind resets it)."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.kind: str | None = None
        self.count = 0
        self.last_error: str | None = None

    def record(self, kind: str | None, error: str | None) -> str | None:
        """The stop message once `limit` failures of one kind came in a row, else None."""
        if kind is None:
            self.kind, self.count = None, 0
            return None
        self.count = self.count + 1 if kind == self.kind else 1
        self.kind, self.last_error = kind, error
        if self.count >= self.limit:
            return (
                f"Stopped after {self.count} failed calls in a row ({kind}); the last: {error}. Fix: check the "
                "server and the connection's settings, then press Resume."
            )
        return None
