"""The Jinja sandbox prompt templates run in, with limits on arithmetic, loops and time.

Jinja folds constant expressions while compiling, so `{{ 9999999**99999999 }}` would freeze the server
before anything renders; here `*`, `**` and `%` are intercepted (which also stops the folding) and refuse
results that would be huge. `range` loops share a budget per render, and every call, attribute lookup and
loop step checks the render's deadline, so a template that runs away becomes a template problem.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
import time

import jinja2
from jinja2.sandbox import SandboxedEnvironment

MAX_INT_BITS = 4096  # about 1,200 decimal digits: far more than a prompt needs, far below a slow conversion
MAX_TEXT_CHARS = 1_000_000  # a string or list made by `*` or `%`
MAX_RANGE_STEPS = 100_000  # all `range` loops of one render together
TOO_SLOW = "the template takes too long to render (a very long loop or deep recursion?)."
_WIDTH = re.compile(r"%[-+ #0]*(\*|\d{4,})")  # a '%' format with a computed or very wide field

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("template_deadline", default=None)
_steps: contextvars.ContextVar[list | None] = contextvars.ContextVar("template_steps", default=None)


class TemplateTooCostly(Exception):
    """The template asked for a result too large, or took too long."""


@contextlib.contextmanager
def limits(seconds: float):
    """Renders inside share a deadline `seconds` from now (an enclosing deadline, if any, stays) and each
    has its own budget of range steps."""
    deadline = _deadline.set(time.monotonic() + seconds) if _deadline.get() is None else None
    steps = _steps.set([0])
    try:
        yield
    finally:
        if deadline is not None:
            _deadline.reset(deadline)
        _steps.reset(steps)


def _check_time() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateTooCostly(TOO_SLOW)


def _bits(value: int) -> int:
    return abs(value).bit_length()


def _check_binop(operator: str, left, right) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and _bits(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateTooCostly(f"{left} ** {right} is too large a number for a template.")
    elif operator == "*" and ints:
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            raise TemplateTooCostly("the product is too large a number for a template.")
    elif operator == "*" and isinstance(left, (str, list, tuple)) != isinstance(right, (str, list, tuple)):
        sequence, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
        if isinstance(times, int) and len(sequence) * times > MAX_TEXT_CHARS:
            raise TemplateTooCostly(f"repeating a text {times} times makes it too long for a template.")
    elif operator == "%" and isinstance(left, str) and _WIDTH.search(left):
        raise TemplateTooCostly("'%' formatting with a field width of 1000 or more is not allowed in a template.")


class LimitedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator, left, right):
        _check_time()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        _check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _check_time()
        return super().getitem(obj, argument)


class _Range:
    """`range` for templates: every step of every loop in a render counts against one budget."""

    def __init__(self, *args):
        self.range = range(*args)
        if len(self.range) > MAX_RANGE_STEPS:
            raise TemplateTooCostly(f"range() of more than {MAX_RANGE_STEPS:,} numbers is not allowed.")

    def __len__(self):
        return len(self.range)

    def __iter__(self):
        steps = _steps.get()
        for i, value in enumerate(self.range):
            if i % 256 == 0:
                _check_time()
            if steps is not None:
                steps[0] += 1
                if steps[0] > MAX_RANGE_STEPS:
                    raise TemplateTooCostly(f"the template's loops take more than {MAX_RANGE_STEPS:,} steps.")
            yield value


def environment() -> LimitedEnvironment:
    env = LimitedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["range"] = _Range
    return env
