"""A small OpenAI-compatible HTTP server for tests and benchmarks (127.0.0.1 only).

Serves GET /v1/models and POST /v1/chat/completions with a configurable latency, and answers with
`{"observations": [...]}` holding as many varied sentences as the prompt's "Write N" asks for. Faults
can be injected for every request whose messages contain a marker (`rules["A2"] = "500"`), or once
(`inject("429", "500")`: the next requests no rule matches get them, in order):

  429              rate limited, no Retry-After
  429_retry_after  rate limited with Retry-After (`retry_after_s`)
  500              internal server error
  timeout          answers only after `timeout_sleep_s` (longer than the client's timeout)
  invalid_json     status 200 with a body that is not JSON
  truncated        the content is JSON cut off mid-string (finish_reason "length")
  empty_choices    status 200 with "choices": []
  fenced           the JSON inside a ```json fence with chatter around it
  numbered         a numbered list instead of JSON
  repeat           the same sentences as the first answer this server gave
  format_400       400 if the request has a response_format (as some servers do)
  params_400       400 for max_tokens and for temperature (as OpenAI's reasoning models do)
  seed_400         400 if the request has a seed
  401              the key is refused (invalid_api_key)
  quota            429 insufficient_quota (the account has no credit)
  unknown_model    404 model_not_found
  429_retry_date   rate limited with Retry-After as an HTTP date `retry_after_s` from now
  short            an answer with one observation fewer than asked for (at least one)
  raw              the assistant content is the next of `raw_contents` (in turn): refusals, chatter, ...
  refusal          status 200 with a refusal message and no content

Batch API: POST /v1/files (multipart, purpose "batch"), GET /v1/files/{id}/content, POST /v1/batches,
GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. A batch runs every line through the same answers and
faults as live calls, `batch_delay_s` after it was created (0: at once); lines whose answer is not 200 go
to the error file. `batch_fail_ids` (custom ids) fail with a 500 (a partially failed batch).

Paid answers are counted per request `seed` (`answers_by_seed`: seed -> number of answers sent with status
200 and no fault, whether or not the client was still there to read them). The engine derives each call's
seed from its cell and try (core.generation.requests.try_seed), so a seed answered twice is one cell's try
paid twice; `cell_seeds` in bench/bench_fault_campaign.py maps seeds back to cells.

`echo_auth = "..."` refuses every request with 401 and a body that quotes its Authorization header.

`answer` (a function of the request body returning the message text) replaces the observations answer,
e.g. for a judge; `--answer TEXT` does that standalone.

Run standalone (for benchmarks): `python -m tests.fake_openai --port 8999 --latency-ms 200`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from collections import deque
from email import policy
from email.parser import BytesParser
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"
_WORDS = (
    "child teacher parent classroom playground toy train block puzzle song book window door light noise music "
    "lunch snack bedtime bath morning evening visit clinic therapist sibling cousin peer friend group circle "
    "lines spins flaps rocks hums repeats watches avoids ignores follows points smiles cries laughs screams "
    "covers ears eyes hands feet shoes socks label sticker colour shape number letter clock calendar route "
    "bus car bicycle garden sand water paint crayon paper spoon cup plate blanket pillow fan wheel door switch"
).split()
# Plus rarer made-up words, so texts have a vocabulary shaped like real text (a few common words, many rare).
_SYLLABLES = "ba ko ri mu te sa lo vi ne da pu fe".split()
_RARE = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("n", "s", "l", "")][:500]
_WRITE_N = re.compile(r"[Ww]rite (\d+)")


class FakeOpenAI:
    def __init__(self, latency_s: float = 0.0, port: int = 0, retry_after_s: float = 0.2, timeout_sleep_s: float = 3.0):
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.timeout_sleep_s = timeout_sleep_s
        self.rules: dict[str, str] = {}
        self.requests: list[dict] = []
        self.auth_headers: list[str] = []
        self.headers: list[dict[str, str]] = []  # every header of every request, in arrival order
        self.answers_by_seed: dict[int, int] = {}  # seed -> usable answers sent (status 200, no fault)
        self.in_flight = 0  # chat requests received and not yet answered
        self._once: deque[str] = deque()
        self._lock = threading.Lock()
        self._counter = 0
        self._first_texts: list[str] | None = None
        self.fixed_texts: list[str] | None = None  # when set, every answer holds these texts
        self.error_message: str | None = None  # when set, the "500" fault's error message
        self.raw_contents: list[str] = []  # the "raw" fault's answers, in turn
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_delay_s = 0.0
        self.batch_fail_ids: set[str] = set()
        self._raw_next = 0
        # When set, every request is refused with 401 and a body that echoes its Authorization header back
        # (as some proxies do), followed by this text.
        self.echo_auth: str | None = None
        self.answer = None  # when set: body -> the assistant message text
        self.httpd = _Server(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def inject(self, *faults: str) -> None:
        with self._lock:
            self._once.extend(faults)

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # -- answers

    def _next_fault(self, body: dict) -> str | None:
        """A standing rule for these messages first; otherwise the next one-off fault, if any."""
        text = json.dumps(body.get("messages", []))
        for marker, fault in list(self.rules.items()):
            if marker in text:
                return fault
        with self._lock:
            return self._once.popleft() if self._once else None

    def _texts(self, n: int) -> list[str]:
        if self.fixed_texts is not None:
            return list(self.fixed_texts)
        with self._lock:
            self._counter += 1
            rng = random.Random(self._counter)
        texts = [_sentence(rng) for _ in range(n)]
        with self._lock:
            if self._first_texts is None:
                self._first_texts = texts
        return texts

    def completion(self, body: dict, fault: str | None) -> tuple[int, dict, bytes]:
        """(status, headers, body bytes) for a chat completion request."""
        messages = body.get("messages", [])
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        match = _WRITE_N.search(prompt)
        n = int(match.group(1)) if match else 1
        if fault == "429":
            return 429, {}, _error("Rate limit reached (no retry hint).", "rate_limit_exceeded")
        if fault == "429_retry_after":
            return 429, {"Retry-After": f"{self.retry_after_s:g}"}, _error("Rate limit reached.", "rate_limit_exceeded")
        if fault == "500":
            message = self.error_message or "The server had an error while processing your request."
            return 500, {}, _error(message, "server_error")
        if fault == "401":
            return 401, {}, _error("Incorrect API key provided: sk-wrong.", "invalid_api_key")
        if fault == "quota":
            return 429, {}, _error("You exceeded your current quota, please check your plan.", "insufficient_quota")
        if fault == "unknown_model":
            message = f"The model `{body.get('model')}` does not exist or you do not have access to it."
            return 404, {}, _error(message, "model_not_found")
        if fault == "429_retry_date":
            when = formatdate(time.time() + self.retry_after_s, usegmt=True)
            return 429, {"Retry-After": when}, _error("Rate limit reached.", "rate_limit_exceeded")
        if fault == "seed_400" and "seed" in body:
            return 400, {}, _error("Unrecognized request argument supplied: seed", "invalid_request_error")
        if fault == "invalid_json":
            return 200, {}, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "oops'
        if fault == "params_400" and "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
            )
            return 400, {}, _error(message, "unsupported_parameter")
        if fault == "params_400" and "temperature" in body:
            message = "Unsupported value: 'temperature' does not support 1.0 with this model."
            return 400, {}, _error(message, "unsupported_value")
        if fault == "format_400" and "response_format" in body:
            return 400, {}, _error("Invalid parameter: response_format is not supported by this server.", "bad")
        texts = self._first_texts if fault == "repeat" and self._first_texts else self._texts(n)
        if fault == "short":
            texts = texts[: max(1, n - 1)]
        content = self.answer(body) if self.answer else json.dumps({"observations": texts})
        if fault == "raw":
            with self._lock:
                content = self.raw_contents[self._raw_next % len(self.raw_contents)]
                self._raw_next += 1
        finish = "stop"
        if fault == "refusal":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
            answer = {"id": "chatcmpl-refusal", "object": "chat.completion", "model": body.get("model", MODEL)}
            answer["choices"] = [{"index": 0, "message": message, "finish_reason": "stop"}]
            return 200, {}, json.dumps(answer).encode()
        if fault == "truncated":
            content, finish = content[: max(len(content) - 25, 20)], "length"
        elif fault == "fenced":
            content = "Sure! Here they are:\n```json\n" + content + "\n```\nLet me know if you need more."
        elif fault == "numbered":
            content = "Here are the observations:\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
        choices = (
            []
            if fault == "empty_choices"
            else [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]
        )
        answer = {
            "id": f"chatcmpl-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": choices,
            "usage": {
                "prompt_tokens": max(1, len(prompt) // 4),
                "completion_tokens": max(1, len(content) // 4),
                "total_tokens": max(1, len(prompt) // 4) + max(1, len(content) // 4),
            },
        }
        return 200, {}, json.dumps(answer).encode()

    # -- batch API

    def add_file(self, content: bytes, purpose: str, name: str = "file.jsonl") -> dict:
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    def create_batch(self, body: dict) -> dict:
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": body.get("input_file_id"),
                "completion_window": body.get("completion_window"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_ready_at": time.monotonic() + self.batch_delay_s,
            }
            self.batches[batch_id] = batch
        return batch

    def batch_view(self, batch_id: str) -> dict | None:
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        if batch["status"] in ("validating", "in_progress") and time.monotonic() >= batch["_ready_at"]:
            self._run_batch(batch)
        elif batch["status"] == "validating":
            batch["status"] = "in_progress"
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def cancel_batch(self, batch_id: str) -> dict | None:
        batch = self.batches.get(batch_id)
        if batch is not None and batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelled"
        return self.batch_view(batch_id)

    def _run_batch(self, batch: dict) -> None:
        out, err = [], []
        lines = self.files[batch["input_file_id"]].decode().splitlines()
        for i, line in enumerate(lines):
            request = json.loads(line)
            body = request["body"]
            fault = "500" if request["custom_id"] in self.batch_fail_ids else self._next_fault(body)
            status, _, payload = self.completion(body, fault)
            record = {
                "id": f"batch_req_{i}",
                "custom_id": request["custom_id"],
                "response": {"status_code": status, "request_id": f"req_{i}", "body": json.loads(payload)},
                "error": None,
            }
            (out if status == 200 else err).append(json.dumps(record))
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        if out:
            batch["output_file_id"] = self.add_file(("\n".join(out) + "\n").encode(), "batch_output")["id"]
        if err:
            batch["error_file_id"] = self.add_file(("\n".join(err) + "\n").encode(), "batch_output")["id"]
        batch["status"] = "completed"


def _multipart_file(content_type: str, raw: bytes) -> tuple[bytes, str]:
    """(file bytes, purpose) of a multipart/form-data upload."""
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    content, purpose = b"", ""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            content = part.get_payload(decode=True)
        elif name == "purpose":
            purpose = part.get_payload(decode=True).decode()
    return content, purpose


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(10)] + [rng.choice(_RARE) for _ in range(4)]
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops a burst of 32 connects (1 s SYN retries)


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


def _handler(server: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, headers: dict, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout fault)

        def _echo_auth(self) -> bool:
            if server.echo_auth is None:
                return False
            message = f"Proxy: credentials refused (Authorization: {self.headers.get('Authorization', '')}). "
            self._send(401, {}, _error(message + server.echo_auth, "invalid_api_key"))
            return True

        def do_GET(self):
            server.auth_headers.append(self.headers.get("Authorization", ""))
            server.headers.append(dict(self.headers.items()))
            server.requests.append({"path": self.path, "body": None})
            if self._echo_auth():
                return None
            if self.path.rstrip("/").endswith("/models"):
                data = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "tests"}]}
                return self._send(200, {}, json.dumps(data).encode())
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[-1] == "content" and parts[-3] == "files" and parts[-2] in server.files:
                return self._send(200, {}, server.files[parts[-2]])
            if parts[-2] == "batches" and (batch := server.batch_view(parts[-1])):
                return self._send(200, {}, json.dumps(batch).encode())
            self._send(404, {}, _error(f"No route {self.path}", "not_found"))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            server.auth_headers.append(self.headers.get("Authorization", ""))
            server.headers.append(dict(self.headers.items()))
            path = self.path.split("?")[0].rstrip("/")
            if path.endswith("/files"):
                content, purpose = _multipart_file(self.headers.get("Content-Type", ""), raw)
                server.requests.append({"path": self.path, "body": {"purpose": purpose, "bytes": len(content)}})
                return self._send(200, {}, json.dumps(server.add_file(content, purpose)).encode())
            if path.endswith("/cancel") and "/batches/" in path:
                server.requests.append({"path": self.path, "body": None})
                batch = server.cancel_batch(path.split("/")[-2])
                return self._send(200 if batch else 404, {}, json.dumps(batch or {}).encode())
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {}, _error("Request body is not JSON.", "invalid_request_error"))
            server.requests.append({"path": self.path, "body": body})
            if self._echo_auth():
                return None
            if path.endswith("/batches"):
                return self._send(200, {}, json.dumps(server.batch_view(server.create_batch(body)["id"])).encode())
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {}, _error(f"No route {self.path}", "not_found"))
            fault = server._next_fault(body)
            with server._lock:
                server.in_flight += 1
            try:
                if fault == "timeout":
                    time.sleep(server.timeout_sleep_s)
                elif server.latency_s:
                    time.sleep(server.latency_s)
                status, headers, answer = server.completion(body, fault)
            finally:
                with server._lock:
                    server.in_flight -= 1
            if status == 200 and fault is None and "seed" in body:
                with server._lock:  # counted as paid once the answer leaves, read or not
                    server.answers_by_seed[body["seed"]] = server.answers_by_seed.get(body["seed"], 0) + 1
            self._send(status, headers, answer)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--answer", default=None, help="answer every chat request with this message text")
    args = parser.parse_args()
    fake = FakeOpenAI(latency_s=args.latency_ms / 1000, port=args.port)
    if args.answer is not None:
        fake.answer = lambda body: args.answer
    print(f"READY {fake.base_url}", flush=True)
    fake.httpd.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
