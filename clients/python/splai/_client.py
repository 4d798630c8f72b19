"""The hand-written layer over the generated `splai_api` operations."""

from __future__ import annotations

import json
import time
from http import HTTPStatus
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import httpx

from splai_api import AuthenticatedClient
from splai_api import Client as PlainClient
from splai_api.api.artifacts import get_artifact as _content
from splai_api.api.artifacts import get_lineage as _lineage
from splai_api.api.artifacts import list_artifacts as _artifacts
from splai_api.api.jobs import cancel_job as _cancel
from splai_api.api.jobs import get_job as _get
from splai_api.api.jobs import list_jobs as _list
from splai_api.api.jobs import list_tasks as _tasks
from splai_api.api.jobs import submit_job as _submit
from splai_api.models import ErrorBody, JobSubmission
from splai_api.types import UNSET, Response

# Statuses after which the same request may succeed: rate limits and an unavailable read model.
RETRYABLE = {429, 503}


class SplaiError(Exception):
    """An error answer: the HTTP status and the server's `ErrorBody` (`code`, `message`, `field`)."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None,
                 retry_after: Optional[float] = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after


@dataclass(frozen=True)
class Event:
    """One server-sent event of a job's stream; `id` is its per-job sequence number (None for
    `end`), `data` its decoded JSON."""

    id: Optional[str]
    event: str
    data: Any


def _error_of(response: Response[Any]) -> SplaiError:
    retry_after = response.headers.get("retry-after")
    try:
        body = ErrorBody.from_dict(json.loads(response.content))
        field = body.field if isinstance(body.field, str) else None
        return SplaiError(int(response.status_code), body.code, body.message, field,
                          float(retry_after) if retry_after else None)
    except (ValueError, KeyError, TypeError):
        text = response.content.decode("utf-8", "replace")
        return SplaiError(int(response.status_code), "unexpected", text)


def _json(response: Response[Any]) -> Any:
    if int(response.status_code) >= 400:
        raise _error_of(response)
    return json.loads(response.content) if response.content else None


class Client:
    """A SPLAI gateway at `base_url`, with a bearer `token` when auth is on, for `tenant` when
    the token allows several (header `X-SPLAI-Tenant`). Requests that fail with 429, 503 or a
    transport error are retried up to `retries` times, waiting `Retry-After` (or backing off)."""

    def __init__(self, base_url: str, token: Optional[str] = None, tenant: Optional[str] = None,
                 timeout: float = 30.0, retries: int = 3):
        headers = {"X-SPLAI-Tenant": tenant} if tenant else {}
        timeout_ = httpx.Timeout(timeout)
        if token:
            self.api: PlainClient | AuthenticatedClient = AuthenticatedClient(
                base_url=base_url, token=token, headers=headers, timeout=timeout_)
        else:
            self.api = PlainClient(base_url=base_url, headers=headers, timeout=timeout_)
        self.retries = retries

    def _call(self, send: Callable[[], Response[Any]]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = send()
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
                continue
            if int(response.status_code) in RETRYABLE and attempt < self.retries:
                error = _error_of(response)
                time.sleep(error.retry_after if error.retry_after else min(0.2 * 2 ** attempt, 5.0))
                continue
            return _json(response)
        raise AssertionError("unreachable")

    def submit(self, request: dict[str, Any] | JobSubmission) -> dict[str, Any]:
        """Submit a job; `{job_id, trace_id, state, links}`. Without an `idempotency_key` one is
        added, so a retry after a lost answer finds the job it made instead of making another."""
        if isinstance(request, JobSubmission):
            if request.idempotency_key is UNSET or request.idempotency_key is None:
                request.idempotency_key = f"py-{uuid.uuid4().hex}"
            return self._call(lambda: _submit.sync_detailed(client=self.api, body=request))
        # A plain dict is sent as it is (a round trip through the generated model could reorder
        # or drop what it does not model, such as a task's free-form literal inputs).
        body = {**request}
        body.setdefault("idempotency_key", f"py-{uuid.uuid4().hex}")
        http = self.api.get_httpx_client()

        def send() -> Response[Any]:
            r = http.post("/v1/jobs", json=body)
            return Response(status_code=HTTPStatus(r.status_code), content=r.content, headers=r.headers, parsed=None)

        return self._call(send)

    def job(self, job_id: str) -> dict[str, Any]:
        """Status, progress, timestamps and, once succeeded, the result."""
        return self._call(lambda: _get.sync_detailed(job_id, client=self.api))

    def jobs(self, state: Optional[str] = None, limit: int = 50) -> dict[str, Any]:
        """`{jobs, next_cursor}`, newest first."""
        return self._call(lambda: _list.sync_detailed(client=self.api, state=state or UNSET, limit=limit))

    def tasks(self, job_id: str) -> dict[str, Any]:
        return self._call(lambda: _tasks.sync_detailed(job_id, client=self.api))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask for the job's cancellation (idempotent); `{job_id, state}`."""
        return self._call(lambda: _cancel.sync_detailed(job_id, client=self.api))

    def artifacts(self, job_id: str) -> dict[str, Any]:
        return self._call(lambda: _artifacts.sync_detailed(job_id, client=self.api))

    def artifact(self, job_id: str, task: str, attempt: int) -> Any:
        """One artifact's content, verified by the gateway against its sha256."""
        return self._call(lambda: _content.sync_detailed(job_id, task, attempt, client=self.api))

    def lineage(self, job_id: str) -> dict[str, Any]:
        return self._call(lambda: _lineage.sync_detailed(job_id, client=self.api))

    def stream(self, job_id: str, last_event_id: Optional[str] = None,
               reconnects: int = 5) -> Iterator[Event]:
        """The job's events, from the start (or after `last_event_id`) to `end`. A dropped
        connection is resumed with `Last-Event-ID`: no event is missed or repeated."""
        http = self.api.get_httpx_client()
        drops = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                with http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=headers,
                                 timeout=httpx.Timeout(30.0, read=None)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error_of(Response(status_code=HTTPStatus(response.status_code), content=response.content,
                                                 headers=response.headers, parsed=None))
                    for event in _events(response.iter_lines()):
                        if event.id is not None:
                            last_event_id = event.id
                        yield event
                        if event.event == "end":
                            return
            except (httpx.TransportError, httpx.StreamError):
                drops += 1
                if drops > reconnects:
                    raise
                time.sleep(min(0.2 * 2 ** drops, 5.0))

    def wait(self, job_id: str) -> dict[str, Any]:
        """Follow the job's stream to its end; the job as `job()` then answers."""
        for _ in self.stream(job_id):
            pass
        return self.job(job_id)


def _events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events of `lines` (the text/event-stream format; comments skipped)."""
    event_id: Optional[str] = None
    name = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    value = json.loads(text)
                except ValueError:
                    value = text
                yield Event(event_id, name, value)
            event_id, name, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)
