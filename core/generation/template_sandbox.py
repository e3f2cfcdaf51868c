"""The Jinja sandbox prompt templates run in, with limits on arithmetic, loops, text sizes and time.

Jinja folds constant expressions while compiling, so `{{ 9999999**99999999 }}` would freeze the server
before anything renders; here `*`, `**` and `%` are intercepted (which also stops the folding) and refuse
results that would be huge. `range` loops share a budget per render, and every call, attribute lookup and
loop step checks the render's deadline, so a template that runs away becomes a template problem.

Texts are capped at MAX_TEXT_CHARS wherever a template can grow one: every filter's result, string methods
(`ljust`, `replace`, `join`, `format`, ...), `+` and `~`, and the whole render. Filters and methods that
could build a huge text before returning it (`center(10**9)`, `replace` of a long text, `indent` with a long
prefix, `wordwrap`, `join`, `batch` and `slice` with a fill value) are checked on their arguments first, so
nothing huge is ever built.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import re
import time

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.runtime import markup_join
from jinja2.sandbox import SandboxedEnvironment

MAX_INT_BITS = 4096  # about 1,200 decimal digits: far more than a prompt needs, far below a slow conversion
MAX_TEXT_CHARS = 1_000_000  # any string or list a template makes, and its whole output (a prompt is far shorter)
TOO_LONG = f"the template would produce more than {MAX_TEXT_CHARS:,} characters"
MAX_RANGE_STEPS = 100_000  # all `range` loops of one render together
TOO_SLOW = "the template takes too long to render (a very long loop or deep recursion?)."
_WIDTH = re.compile(r"%[-+ #0]*(\*|\d{4,})")  # a '%' format with a computed or very wide field
_DIGITS = re.compile(r"\d+")

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
    elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        _check_size(len(left) + len(right), "+")


def _check_size(size: int, where: str) -> None:
    if size > MAX_TEXT_CHARS:
        raise TemplateTooCostly(f"{TOO_LONG} (at '{where}').")


def _text_len(value) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _joined_size(items, separator) -> int:
    """The length `separator.join(items)` would have, counted without building it."""
    items = list(items)
    return sum(_text_len(i) for i in items) + max(len(items) - 1, 0) * _text_len(separator)


def _replaced_size(text, old, new, count=None) -> int:
    text, old, new = str(text), str(old), str(new)
    found = len(text) + 1 if not old else text.count(old)
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _filter_size(name: str, a: dict) -> int | None:
    """The largest size a filter's result can have, from its arguments, for filters that could build a huge
    text (or list) before returning it; None for the others (their result is measured afterwards)."""
    if name == "center":
        return max(_text_len(a["value"]), int(a.get("width", 80)))
    if name == "indent":
        prefix = a.get("width", 4)
        prefix = len(prefix) if isinstance(prefix, str) else int(prefix)
        text = _text_len(a["s"])
        return text + (str(a["s"]).count("\n") + 1) * max(prefix, 0)
    if name == "wordwrap":
        text, width = _text_len(a["s"]), max(int(a.get("width", 79)), 1)
        return text + (text // width + 1) * len(a.get("wrapstring") or "\n")
    if name == "replace":
        return _replaced_size(a["s"], a["old"], a["new"], a.get("count"))
    if name == "join" and not isinstance(a["value"], str):
        return _joined_size(a["value"], a.get("d", ""))
    if name in ("batch", "slice") and a.get("fill_with") is not None:
        return int(a.get("linecount", a.get("slices", 0)))
    if name == "slice":
        return int(a.get("slices", 0))  # one list per slice, made in a loop
    if name == "format" and isinstance(a["value"], str) and _WIDTH.search(a["value"]):
        return MAX_TEXT_CHARS + 1
    return None


def _limited_filter(name: str, function):
    """The filter, refusing arguments that would build a huge result and any result over the limit."""
    signature = inspect.signature(function)
    # Jinja's async-ready filters take the eval context first, though their signature (the sync one's) does not.
    skip = int(hasattr(function, "jinja_pass_arg") and next(iter(signature.parameters), "") == "value")

    @functools.wraps(function)  # keeps jinja_pass_arg, so Jinja passes the context/environment as before
    def limited(*args, **kwargs):
        _check_time()
        try:
            size = _filter_size(name, signature.bind(*args[skip:], **kwargs).arguments)
        except (TypeError, ValueError, KeyError):
            size = None  # arguments the filter itself refuses, with its own message
        if size is not None:
            _check_size(size, f"|{name}")
        result = function(*args, **kwargs)
        if isinstance(result, (str, list, tuple)):
            _check_size(len(result), f"|{name}")
        return result

    return limited


def _method_size(method, args: tuple, kwargs: dict) -> int | None:
    """Like _filter_size, for str methods called from a template ('x'.ljust(10**9))."""
    method = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return None
    if name in ("ljust", "rjust", "center", "zfill") and args:
        return max(len(owner), int(args[0]))
    if name == "expandtabs":
        return len(owner) + owner.count("\t") * int(args[0] if args else kwargs.get("tabsize", 8))
    if name == "replace" and len(args) >= 2:
        return _replaced_size(owner, args[0], args[1], args[2] if len(args) > 2 else None)
    if name == "join" and args:
        return _joined_size(args[0], owner)
    if name in ("format", "format_map"):
        # At most: the format, every value, and every number in the format or among the values used as a
        # field width ('{:>1000000000}', '{:>{w}}'). A generous bound, never an underestimate.
        values = list(args) + list(kwargs.values()) + (list(args[0].values()) if name == "format_map" else [])
        numbers = [v for v in values if isinstance(v, int)] + [int(d) for d in _DIGITS.findall(owner)]
        return len(owner) + sum(_text_len(v) for v in values) + sum(abs(n) for n in numbers)
    return None


class _LimitedCodeGenerator(CodeGenerator):
    """Compiles `a ~ b` so that the joined length is checked before the text is built."""

    def visit_Concat(self, node, frame) -> None:
        markup = "context.eval_ctx.volatile" if frame.eval_ctx.volatile else str(bool(frame.eval_ctx.autoescape))
        self.write("environment.limited_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(f"), {markup})")


class LimitedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _LimitedCodeGenerator

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters = {name: _limited_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context, operator, left, right):
        _check_time()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def limited_concat(parts: tuple, markup: bool) -> str:
        parts = [p if isinstance(p, str) else str(p) for p in parts]
        _check_size(sum(len(p) for p in parts), "~")
        return markup_join(parts) if markup else "".join(parts)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _check_time()
        try:
            size = _method_size(__obj, args, kwargs)
        except (TypeError, ValueError, AttributeError):
            size = None  # arguments the method itself refuses, with its own message
        if size is not None:
            _check_size(size, f".{__obj.__name__}()")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, (str, list, tuple)):
            _check_size(len(result), getattr(__obj, "__name__", "a call"))
        return result

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


def render(template: jinja2.Template, context: dict) -> str:
    """`template.render(context)`, stopped as soon as the output passes MAX_TEXT_CHARS (literal text repeated
    by a loop never goes through a filter or an operator). The error is thrown into the template where it
    stands, so its traceback, and the problem's line, point at the line that was writing."""
    parts, total = [], 0
    try:
        output = template.root_render_func(template.new_context(context))
        for chunk in output:
            total += len(chunk)
            if total > MAX_TEXT_CHARS:
                output.throw(TemplateTooCostly(f"{TOO_LONG}."))
            parts.append(chunk)
    except Exception:
        template.environment.handle_exception()
    return "".join(parts)
