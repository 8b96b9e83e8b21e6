"""The worker contract from the scheduler's side: signed calls that carry the attempt.

Built on :class:`taskworker.client.SignedClient` (one urllib3 pool per process, explicit
timeouts, retries only of connection failures), so both sides speak through one client.
It also serves the API as its :class:`~taskscheduler.services.WorkerCommands`: pausing,
continuing, cancelling or rolling back a task that sits on a worker.
"""

from __future__ import annotations

from typing import Any, Protocol

from taskworker.client import SignedClient, error_for
from taskworker.contract.api import Action, TaskView
from taskworker.contract.worker import ActCall, CallBatch, CreateCall, WorkerCreateBody
from taskworker.errors import NotFound, TaskError, Unavailable

#: A worker's prepare runs the plugin's checks within the request; allow it that long.
PREPARE_TIMEOUT_SECONDS = 60.0


class WorkerCommands(Protocol):
    """How the scheduler reaches the worker a task is on (the worker client implements it).

    The scheduler changes the task's state only after :meth:`command` returned, so a worker
    that cannot be reached (raise :class:`Unavailable`) or refuses (raise a
    :class:`~taskworker.errors.Conflict`) leaves the task as it was.
    """

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        """Deliver ``pause``, ``continue``, ``cancel`` or ``rollback`` to ``task.worker``."""

    def summary(self, task: TaskView) -> Any:
        """The plugin's own summary of ``task`` from its worker, or None."""


class WorkerClient:
    def __init__(self, secret: str | None, node_name: str) -> None:
        self._secret = secret
        self._name = node_name
        self._clients: dict[str, SignedClient] = {}
        #: Workers that answered 404 for ``/v1/batch``: they get their calls one by one.
        self._unbatched: set[str] = set()

    def _client(self, url: str) -> SignedClient:
        if not self._secret:
            raise Unavailable("no TASK_WORKER_SECRET: this node cannot sign worker calls", 60)
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = SignedClient(url, self._secret, name=self._name)
        return client

    def create(self, url: str, task_type: str, body: WorkerCreateBody) -> dict[str, Any]:
        """Hand the task to the worker (the body carries ``dispatch``: id, attempt, token)."""
        reply = self._client(url).request("POST", f"/v1/task/{task_type}", body=body)
        return dict(reply.json(dict))

    def act(
        self, url: str, task_type: str, task_id: int, action: str, attempt: int
    ) -> dict[str, Any]:
        timeout = PREPARE_TIMEOUT_SECONDS if action == Action.PREPARE else None
        reply = self._client(url).request(
            "PUT",
            f"/v1/task/{task_type}",
            query={"task_id": task_id, "action": action, "attempt": attempt},
            timeout=timeout,
        )
        return dict(reply.json(dict)) if reply.data else {}

    def batch(
        self, url: str, calls: list[CreateCall | ActCall]
    ) -> list[dict[str, Any] | TaskError]:
        """Many contract calls (:class:`~taskworker.contract.worker.CallBatch`) in one
        request: per call its answer, or the error it was answered with. A worker without
        ``/v1/batch`` gets them one by one; a request that fails as a whole is that error
        for every call."""
        if not calls:
            return []
        if url not in self._unbatched:
            timeout = PREPARE_TIMEOUT_SECONDS if _prepares(calls) else None
            try:
                reply = self._client(url).request(
                    "POST", "/v1/batch", body=CallBatch(calls), timeout=timeout
                )
            except NotFound:
                self._unbatched.add(url)  # a worker that speaks only the per-task calls
            except TaskError as exc:
                return [exc] * len(calls)
            else:
                results = reply.json(dict[str, list[dict[str, Any]]])["results"]
                return [
                    dict(r["body"] or {})
                    if r["status"] < 400
                    else error_for(r["status"], r["body"])
                    for r in results
                ]
        return [self._one(url, call) for call in calls]

    def _one(self, url: str, call: CreateCall | ActCall) -> dict[str, Any] | TaskError:
        try:
            if isinstance(call, CreateCall):
                return self.create(url, call.task_type, call.body)
            return self.act(url, call.task_type, call.task_id, call.action, call.attempt)
        except TaskError as exc:
            return exc

    def status(self, url: str, task_type: str, task_id: int, attempt: int) -> dict[str, Any]:
        reply = self._client(url).request(
            "GET",
            f"/v1/task/{task_type}",
            query={"task_id": task_id, "action": "status", "attempt": attempt},
        )
        return dict(reply.json(dict))

    # WorkerCommands, for the API's actions on a task that is on a worker.

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        self.act(_url(task), task.task_type, task.task_id, action, task.attempt)

    def summary(self, task: TaskView) -> Any:
        reply = self._client(_url(task)).request(
            "GET",
            f"/v1/task/{task.task_type}",
            query={"task_id": task.task_id, "action": "summary", "attempt": task.attempt},
        )
        return reply.json(dict)


def _prepares(calls: list[CreateCall | ActCall]) -> bool:
    return any(isinstance(call, ActCall) and call.action is Action.PREPARE for call in calls)


def _url(task: TaskView) -> str:
    if not task.worker:
        raise Unavailable(f"task {task.task_id} is on no worker", 1)
    return task.worker


#: How long a client should wait before retrying a command no worker client could carry.
NO_CLIENT_RETRY_AFTER_SECONDS = 5


class NoWorkerClient:
    """Stands in until a worker client is configured: reaching a worker is impossible."""

    def command(self, task: TaskView, action: Action, reason: str | None) -> None:
        raise Unavailable(
            f"task {task.task_id} is on worker {task.worker}, which this node cannot reach "
            f"to {action} it",
            NO_CLIENT_RETRY_AFTER_SECONDS,
        )

    def summary(self, task: TaskView) -> Any:
        return None
