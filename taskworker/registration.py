"""Being known to the scheduler: register, heartbeat, deregister.

The scheduler gives tasks only to workers it has heard from lately, so a worker keeps
telling it: registration (its URL, capacity and every plugin's description) at start, a
heartbeat every few seconds, a deregistration when it stops. The scheduler may be down when
the worker starts or restarts later: the loop keeps trying, and registers again whenever a
heartbeat is answered 404 (the scheduler lost or removed the entry).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from taskworker.client import SignedClient
from taskworker.contract.worker import TypeSpec, WorkerHeartbeat, WorkerRegistration
from taskworker.errors import NotFound, TaskError
from taskworker.task import Task

log = logging.getLogger(__name__)


def registration(
    name: str, url: str, capacity: int, plugins: dict[str, type[Task]]
) -> WorkerRegistration:
    """What this worker tells the scheduler about itself."""
    types = {
        task_type: TypeSpec(
            params_schema=plugin.params_schema,
            blocking=plugin.blocking,
            privileged=plugin.privileged,
            description=plugin.description or None,
            supports=sorted(plugin.steps()),
            declares_resources=plugin.declares_resources(),
            undo=plugin.undo_kind(),
        )
        for task_type, plugin in sorted(plugins.items())
    }
    return WorkerRegistration(name=name, url=url, capacity=capacity, task_types=types)


class Registration:
    """Keeps the worker registered; ``on_beat`` runs each period and says how many run."""

    def __init__(
        self,
        client: SignedClient,
        entry: WorkerRegistration,
        *,
        period: float,
        on_beat: Callable[[], int],
    ) -> None:
        self._client = client
        self._entry = entry
        self._period = period
        self._on_beat = on_beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="registration", daemon=True)
        self._thread.start()

    def tick(self) -> None:
        """One period: register if not yet, else heartbeat (re-registering when forgotten)."""
        running = self._on_beat()
        try:
            if not self.registered:
                self.register()
                return
            self._client.request(
                "PUT",
                f"/v1/workers/{self._entry.name}/heartbeat",
                body=WorkerHeartbeat(running=running),
            )
        except NotFound:
            log.warning("the scheduler forgot this worker; registering again")
            self.registered = False
        except TaskError as exc:
            log.warning("cannot reach the scheduler at %s: %s", self._client.base_url, exc)

    def register(self) -> None:
        self._client.request("POST", "/v1/workers", body=self._entry)
        self.registered = True
        log.info(
            "registered as %s (%s) with %d task types",
            self._entry.name,
            self._entry.url,
            len(self._entry.task_types),
        )

    def _run(self) -> None:
        while True:
            self.tick()
            if self._stop.wait(self._period):
                return

    def stop(self) -> None:
        """Stop heartbeating and tell the scheduler this worker is gone."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.registered:
            return
        try:
            self._client.request("DELETE", f"/v1/workers/{self._entry.name}")
        except TaskError as exc:
            log.warning("deregistration failed (the scheduler will notice the silence): %s", exc)
        else:
            log.info("deregistered %s", self._entry.name)
