"""Creating tasks: what ``POST /v1/task/{type}``, a batch and ``POST /v1/topology`` do.

Every way a task comes to exist — a single create, a batch, a topology's nodes, a fan-out's
targets — goes through :meth:`TaskCreator.check` and the same columns, so it shares the same
checks: the type must be registered, a privileged type needs the admin role, the params
must satisfy its schema, linked tasks must exist, all before anything is stored.

The caller's ``role`` is the API's (``viewer``/``operator``/``admin``, admin in open mode,
None for a worker's signature or a notify token). Work the scheduler makes later from a
stored definition (a trigger's instances, the log dumper's tasks, a fan-out's children) is
not checked again: the role was checked when the definition was made.

An ``idempotency_key`` makes creation safe to repeat. The first request stores the task;
any later one gets that task back (200 instead of 201). Two requests racing with the same
key cannot both insert: the unique index refuses the loser, which then reads the winner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Row, select
from sqlalchemy.exc import IntegrityError

from taskscheduler.control.checks import (
    DEFAULT_MAX_NODES,
    TOPOLOGY_TYPE,
    check_fanout,
    check_nodes,
)
from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import TASKS
from taskscheduler.settings import ROLES
from taskscheduler.tasks.addresses import Addresses
from taskscheduler.tasks.control_tasks import start_control, store_task, store_topology
from taskscheduler.tasks.guard import ROW_BY_ID
from taskscheduler.tasks.store import (
    check_links,
    columns,
    insert_task_row,
    plain,
    store_plain,
)
from taskscheduler.tasks.tokens import notify_token
from taskscheduler.tasks.transitions import apply_trigger
from taskscheduler.tasks.views import (
    CreatedView,
    TopologyView,
    created_view,
    topology_view,
)
from taskscheduler.workers.registry import Registry
from taskworker.contract.api import (
    CreateBody,
    CreateInfo,
    TopologyBody,
)
from taskworker.contract.worker import TypeSpec
from taskworker.errors import Conflict, Forbidden, InvalidInput, NotFound
from taskworker.states import State, Trigger

_c = TASKS.c
#: Most tasks one batch create may hold (the body size limit applies as well).
MAX_BATCH = 1000
#: The only role that may submit, or change the params of, a task of a privileged type.
ADMIN = ROLES[-1]


def check_privilege(task_type: str, spec: TypeSpec, role: str | None) -> None:
    """:class:`Forbidden` (403) unless ``role`` may submit new work of ``task_type``: a
    privileged type runs what it is given as the worker's user, so it is an admin's alone."""
    if spec.privileged and role != ADMIN:
        held = f"the {role} role may not" if role else "only a bearer token's role may"
        raise Forbidden(
            f"task type {task_type!r} is privileged: {held} submit it or change its params; "
            f"it needs {ADMIN}"
        )


class Announcer(Protocol):
    """Tells the dispatch loops of every node that tasks were stored (the queue's wake-up
    implements it): a task submitted to one node starts within milliseconds on any."""

    def notify(self, stored: Iterable[Row[Any]] = ()) -> None:
        """``stored``: the rows just committed, queued at once where the queue allows."""


class Silent:
    """An :class:`Announcer` for a node without one: the loops find the tasks on their own."""

    def notify(self, stored: Iterable[Row[Any]] = ()) -> None:
        return None


class TaskCreator:
    """``POST /v1/task/{type}``, batches and topologies: every check, then one transaction."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        secret: str | None,
        *,
        announcer: Announcer | None = None,
        addresses: Addresses | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._secret = secret
        self._wakeup: Announcer = announcer or Silent()
        self._addresses = addresses or Addresses(engine, ())
        #: TASK_TOPOLOGY_MAX_NODES: the most tasks one topology or fan-out may make
        self._max_nodes = max_nodes

    def create(
        self, task_type: str, body: CreateBody, *, actor: str, role: str | None
    ) -> tuple[CreatedView, bool]:
        """Store a task in ``init`` (or ``pause``); True when it was created by this call."""
        self.check(task_type, body, role=role)
        key = body.create_info.idempotency_key
        if key is not None and (seen := self._by_key(key, task_type)) is not None:
            return seen, False
        try:
            with self._engine.begin() as conn:
                if plain(body) and body.create_info.control_task_id is None:
                    row = insert_task_row(conn, columns(task_type, body), actor=actor)
                else:
                    task_id, _ = store(conn, task_type, body, actor)
                    # read back in the same transaction: the stored defaults
                    row = conn.execute(ROW_BY_ID, {"task_id": task_id}).one()
        except IntegrityError:
            seen = self._by_key(key, task_type) if key is not None else None
            if seen is None:
                raise
            return seen, False
        self._wakeup.notify([row])
        return created_view(row, notify_token(self._secret, row.id)), True

    def create_many(
        self, bodies: list[CreateBody], *, actor: str, role: str | None
    ) -> tuple[list[CreatedView], bool]:
        """Store many tasks in one transaction (one commit instead of one per task): all of
        them, or, when one is bad, none, with the error naming ``tasks[i]``. Items whose
        ``idempotency_key`` was seen come back as they are. True when any was created."""
        if not bodies:
            raise InvalidInput("tasks", "is empty")
        if len(bodies) > MAX_BATCH:
            raise InvalidInput("tasks", f"holds {len(bodies)} tasks; at most {MAX_BATCH}")
        types = [self._batch_item(index, body, role) for index, body in enumerate(bodies)]
        for _ in range(2):  # a second pass only after losing an idempotency-key race
            seen = self._keys_seen(bodies, types)
            try:
                with self._engine.begin() as conn:
                    ids, triggers = dict(seen), []
                    bulk = [i for i, b in enumerate(bodies) if i not in ids and plain(b)]
                    made = store_plain(conn, [(types[i], bodies[i]) for i in bulk], actor)
                    ids.update(zip(bulk, made, strict=True))
                    triggers += [Trigger.SUBMIT.value] * len(made)
                    for index, body in enumerate(bodies):
                        if index not in ids:
                            ids[index], moved = store(conn, types[index], body, actor)
                            triggers += moved
                    query = select(TASKS).where(_c.id.in_(list(ids.values())))
                    rows = {row.id: row for row in conn.execute(query)}
            except IntegrityError:
                continue
            if triggers:
                self._wakeup.notify(rows.values())
            views = [
                created_view(rows[ids[i]], notify_token(self._secret, ids[i]))
                for i in range(len(bodies))
            ]
            return views, bool(triggers)
        raise Conflict("another request stored tasks with the same idempotency keys meanwhile")

    def _batch_item(self, index: int, body: CreateBody, role: str | None) -> str:
        """The item's type, once the item passed every check a single create makes."""
        task_type = body.create_info.task_type
        try:
            if task_type is None:
                raise InvalidInput("create_info.task_type", "is required in a batch")
            self.check(task_type, body, role=role)
        except NotFound as exc:
            raise InvalidInput(f"tasks[{index}].create_info.task_type", str(exc)) from None
        except InvalidInput as exc:
            raise exc.within(f"tasks[{index}]") from None
        except Forbidden as exc:
            raise Forbidden(f"tasks[{index}]: {exc}") from None
        return task_type

    def _keys_seen(self, bodies: list[CreateBody], types: list[str]) -> dict[int, int]:
        """Item index → task id, for the items whose idempotency key names a stored task."""
        keys: dict[str, int] = {}
        for index, body in enumerate(bodies):
            key = body.create_info.idempotency_key
            if key is not None:
                if key in keys:
                    field = f"tasks[{index}].create_info.idempotency_key"
                    raise InvalidInput(field, f"{key!r} repeats tasks[{keys[key]}]'s")
                keys[key] = index
        if not keys:
            return {}
        with reading(self._engine) as conn:
            found = conn.execute(
                select(_c.id, _c.idempotency_key, _c.task_type).where(
                    _c.idempotency_key.in_(list(keys))
                )
            ).all()
        seen = {}
        for row in found:
            index = keys[row.idempotency_key]
            if row.task_type != types[index]:
                raise Conflict(
                    f"tasks[{index}]: idempotency_key {row.idempotency_key!r} already names "
                    f"task {row.id} of type {row.task_type}"
                )
            seen[index] = row.id
        return seen

    def check(self, task_type: str, body: CreateBody, *, role: str | None) -> None:
        """Everything that makes a create body acceptable, before anything is stored."""
        info = body.create_info
        if info.task_type is not None and info.task_type != task_type:
            raise InvalidInput(
                "create_info.task_type", f"{info.task_type!r} differs from the path's {task_type!r}"
            )
        if info.control_task_id is not None:
            raise InvalidInput(
                "create_info.control_task_id",
                "is set by the scheduler on the children of a topology or fan-out",
            )
        spec = self._registry.type_spec(task_type)
        check_privilege(task_type, spec, role)
        self._registry.validate_params(task_type, spec, body.params)
        check_fanout(info, self._max_nodes)
        self._addresses.check(info)

    def create_topology(
        self, body: TopologyBody, *, actor: str, role: str | None
    ) -> tuple[TopologyView, bool]:
        """Store a topology whole (see :mod:`taskscheduler.tasks.control_tasks`) and start
        its control task; True when it was created by this call, False when its idempotency
        key was seen."""
        info = body.create_info or CreateInfo()
        for name in ("parent_task_id", "control_task_id", "targets", "strategy", "max_parallel"):
            if getattr(info, name) is not None:
                raise InvalidInput(f"create_info.{name}", "does not apply to a topology")
        check_nodes(
            body.nodes,
            lambda task_type, node: self.check(task_type, node, role=role),
            max_nodes=self._max_nodes,
        )
        self._addresses.check_topology(info, body.nodes)
        key = info.idempotency_key
        if key is None or (seen := self._by_key(key, TOPOLOGY_TYPE)) is None:
            try:
                with self._engine.begin() as conn:
                    control_id, _ = store_topology(
                        conn,
                        name=body.name,
                        on_failure=body.on_failure,
                        nodes=body.nodes,
                        info=info,
                        actor=actor,
                    )
                    start_control(conn, control_id, actor=actor, now=utcnow())
            except IntegrityError:
                if key is None or (seen := self._by_key(key, TOPOLOGY_TYPE)) is None:
                    raise
            else:
                self._wakeup.notify()
                return self._topology(control_id), True
        return self._topology(seen.task_id), False

    def _topology(self, control_id: int) -> TopologyView:
        with reading(self._engine) as conn:
            row = conn.execute(select(TASKS).where(_c.id == control_id)).one()
            children = conn.execute(
                select(_c.node_key, _c.id).where(_c.control_task_id == control_id)
            ).all()
        return topology_view(row, notify_token(self._secret, row.id), dict(children))

    def _by_key(self, key: str, task_type: str) -> CreatedView | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(TASKS).where(_c.idempotency_key == key)).one_or_none()
        if row is None:
            return None
        if row.task_type != task_type:
            raise Conflict(
                f"idempotency_key {key!r} already names task {row.id} of type {row.task_type}"
            )
        return created_view(row, notify_token(self._secret, row.id))


def store(
    conn: Connection,
    task_type: str,
    body: CreateBody,
    actor: str,
    *,
    link: dict[str, Any] | None = None,
) -> tuple[int, list[str]]:
    """Insert one checked task in ``conn``'s transaction (``link``: more columns, such as a
    trigger instance's ``trigger_id`` and ``fire_time``); its id and the triggers applied."""
    check_links(conn, body)
    task_id = store_task(conn, task_type, body, actor, link=link)
    triggers = [Trigger.SUBMIT.value]
    if body.create_info.targets is not None:
        start_control(conn, task_id, actor=actor, now=utcnow())
    if body.process_arg.task_status == State.PAUSE:
        apply_trigger(conn, task_id, Trigger.PAUSE, actor=actor, reason="created paused")
        triggers.append(Trigger.PAUSE.value)
    return task_id, triggers
