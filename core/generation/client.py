"""The one client path to every LLM: the async `openai` SDK against an OpenAI-compatible endpoint.

`LLMClient.chat` never raises for a failed call: it returns a `CallResult` with the HTTP body exactly
as received (so it can be logged verbatim before anything parses it), the token counts, the latency
and, on failure, the error and whether trying again may help (rate limits, timeouts, 5xx, garbled bodies).
The SDK retries with backoff itself (honouring Retry-After); the generation engine adds its own retries
on top. The API key lives only in the SDK client object and is scrubbed from any text we keep.
"""

from __future__ import annotations

import contextvars
import json
import math
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx2
import openai

from core.keys import mask, mask_key

# Statuses worth retrying: timeout, lock conflict, rate limit, server errors.
RETRYABLE_STATUS = {408, 409, 429}
# The HTTP tries of the call running in this task (the SDK retries inside one `create`).
_tries: contextvars.ContextVar[list | None] = contextvars.ContextVar("llm_http_tries", default=None)


@dataclass
class CallResult:
    status: str  # 'ok' or 'error'
    latency_ms: int
    raw_response: str | None = None
    content: str | None = None
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    http_status: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    http_attempts: list = field(default_factory=list)  # each HTTP try: its status, or "no answer"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def describe_error(exc: BaseException) -> str:
    """A short, exact description of what went wrong, for the call log and the page."""
    if isinstance(exc, openai.APITimeoutError):
        return "Timed out: the server did not answer within the connection's timeout."
    if isinstance(exc, openai.APIStatusError):
        detail = _error_message(exc.response.text) or exc.message
        return f"HTTP {exc.status_code}: {detail}"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"Could not connect: {cause or exc}"
    return f"{type(exc).__name__}: {exc}"


def _error_message(body: str) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return body.strip()[:500] or None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    if isinstance(err, str):
        return err
    if isinstance(data, dict) and data.get("detail"):
        return str(data["detail"])
    return body.strip()[:500]


def retry_after_seconds(headers, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait (Retry-After / retry-after-ms), if it said. Retry-After may be a
    number of seconds or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"); a date in the past means now."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            seconds = _http_date_seconds(value, now) if name == "retry-after" else None
            if seconds is None:
                continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _http_date_seconds(value: str, now: float | None) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LLMClient:
    """One SDK client per connection, shared by all concurrent calls to it."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0, max_retries: int = 2):
        self.base_url = base_url
        self._key = api_key
        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_on_request], "response": [_on_response]})
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries, http_client=http
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    def redact(self, text: str | None) -> str | None:
        """An error text with the key and anything credential-shaped masked (a proxy may echo headers)."""
        return mask(text, self._key)

    def redact_key(self, text: str | None) -> str | None:
        """A successful answer kept verbatim, except the key itself should a server echo it."""
        return mask_key(text, self._key)

    # -- batch API (files and batches); failures raise the SDK's errors, described by describe_error

    async def upload_batch_file(self, name: str, content: bytes) -> str:
        uploaded = await self._sdk.files.create(file=(name, content, "application/jsonl"), purpose="batch")
        return uploaded.id

    async def create_batch(self, input_file_id: str, metadata: dict | None = None) -> dict:
        batch = await self._sdk.batches.create(
            input_file_id=input_file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            **({"metadata": metadata} if metadata else {}),
        )
        return batch.model_dump()

    async def retrieve_batch(self, batch_id: str) -> dict:
        return (await self._sdk.batches.retrieve(batch_id)).model_dump()

    async def cancel_batch(self, batch_id: str) -> dict:
        return (await self._sdk.batches.cancel(batch_id)).model_dump()

    async def file_text(self, file_id: str) -> str:
        return (await self._sdk.files.content(file_id)).text

    async def list_models(self) -> list[str]:
        page = await self._sdk.models.list()
        return sorted(m.id for m in page.data)

    async def chat(self, model: str, messages: list[dict], params: dict) -> CallResult:
        tries: list = []
        token = _tries.set(tries)
        try:
            result = await self._chat(model, messages, params)
        finally:
            _tries.reset(token)
        result.http_attempts = [t if t is not None else "no answer" for t in tries]
        return result

    async def _chat(self, model: str, messages: list[dict], params: dict) -> CallResult:
        start = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - start) * 1000)

        try:
            # The SDK's request path (auth, timeouts, retries with backoff, Retry-After) with the body as we
            # built it: we read the raw answer ourselves, so its typed-parameter transform (~1 ms of CPU
            # per call, which caps throughput at high concurrency) buys nothing here.
            response = await self._sdk.post(
                "/chat/completions", cast_to=httpx2.Response, body={"model": model, "messages": messages, **params}
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            return CallResult(
                "error",
                elapsed(),
                raw_response=self.redact(exc.response.text),
                http_status=status,
                error=self.redact(describe_error(exc)),
                retryable=status in RETRYABLE_STATUS or status >= 500,
                retry_after_s=retry_after_seconds(exc.response.headers),
            )
        except openai.APIConnectionError as exc:  # includes timeouts
            return CallResult("error", elapsed(), error=self.redact(describe_error(exc)), retryable=True)
        latency = elapsed()
        body = response.text
        result = CallResult("ok", latency, raw_response=self.redact_key(body), http_status=response.status_code)
        return _read_body(body, result)


async def _on_request(request) -> None:
    tries = _tries.get()
    if tries is not None:
        tries.append(None)


async def _on_response(response) -> None:
    tries = _tries.get()
    if tries:
        tries[-1] = response.status_code


def result_from_body(body: str, status: int = 200) -> CallResult:
    """A call's result from a chat completion body received some other way (a batch's output file)."""
    return _read_body(body, CallResult("ok", 0, raw_response=body, http_status=status))


def _read_body(body: str, result: CallResult) -> CallResult:
    """Fill content and usage from a chat completion body; a body without an answer is a (retryable) error."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        return _fail(result, f"The server's answer is not valid JSON ({exc}).")
    if not isinstance(data, dict):
        return _fail(result, "The server's answer is not a JSON object.")
    usage = data.get("usage") or {}
    result.tokens_in = usage.get("prompt_tokens")
    result.tokens_out = usage.get("completion_tokens")
    choices = data.get("choices")
    if not choices:
        return _fail(result, "The server returned no choices.")
    choice = choices[0] or {}
    message = choice.get("message") or {}
    result.finish_reason = choice.get("finish_reason")
    content = message.get("content")
    if content is None and message.get("refusal"):
        result.status, result.error = "error", f"The model refused: {message['refusal']}"
        return result
    if not isinstance(content, str) or not content.strip():
        return _fail(result, "The answer's message has no content.")
    result.content = content
    return result


def _fail(result: CallResult, error: str) -> CallResult:
    result.status, result.error, result.retryable = "error", error, True
    return result
