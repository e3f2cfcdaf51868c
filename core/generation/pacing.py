"""Pacing calls to one server: a shared pause after a rate limit, and the wait before trying a cell again."""

from __future__ import annotations

import asyncio
import random

MAX_OWN_WAIT_S = 120.0


class RateGate:
    """Shared by every call to one connection: after a 429, nobody sends until the pause is over."""

    def __init__(self):
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        while (delay := self._until - loop.time()) > 0:
            await asyncio.sleep(delay)


def backoff_s(attempt: int, base: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_OWN_WAIT_S)
    return min(base * 2 ** (attempt - 1), 60.0) * random.uniform(0.5, 1.0)
