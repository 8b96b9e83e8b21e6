"""The worker contract from the scheduler's side: signed calls that carry the attempt.

Built on :class:`taskworker.client.SignedClient` (one urllib3 pool per process, explicit
timeouts, retries only of connection failures), so both sides speak through one client.
It also serves the API as its :class:`~taskscheduler.services.WorkerCommands`: pausing,
continuing, cancelling or rolling back a task that sits on a worker.
"""

from __future__ import annotations

from typing import Any

from taskworker.client import SignedClient
from taskworker.contract import Action, TaskView
from taskworker.errors import Unavailable

#: A worker's prepare runs the plugin's checks within the request; allow it that long.
PREPARE_TIMEOUT_SECONDS = 60.0


class WorkerClient:
    def __init__(self, secret: str | None, node_name: str) -> None:
        self._secret = secret
        self._name = node_name
        self._clients: dict[str, SignedClient] = {}

    def _client(self, url: str) -> SignedClient:
        if not self._secret:
            raise Unavailable("no TASK_WORKER_SECRET: this node cannot sign worker calls", 60)
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = SignedClient(url, self._secret, name=self._name)
        return client

    def create(self, url: str, task_type: str, body: dict[str, Any]) -> dict[str, Any]:
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


def _url(task: TaskView) -> str:
    if not task.worker:
        raise Unavailable(f"task {task.task_id} is on no worker", 1)
    return task.worker
