"""Workers and the task types they serve, as stored in the ``workers`` table.

A task type exists because some worker registered it: its row's ``task_types`` JSON maps
each type to the worker's :class:`~taskworker.contract.worker.TypeSpec` (params schema, blocking,
supported steps, what undoing a task of it means). When several workers serve a type, the
most recently registered one's spec wins, so rolling out a plugin with a new schema takes
effect as its workers come up.

Except for ``privileged`` (only an admin may submit such a type): there the safe side wins.
A type is privileged when any stored registration of it says so, whichever is newest and
whether or not that worker still beats, and ``shell`` and ``script`` are privileged by name,
so a worker that does not say (an older SDK, a worker in another language) cannot make a
command runner open to operators.

Params are validated against the type's JSON schema before anything is stored. Compiling a
validator costs far more than running it, so compiled validators are kept per type and
rebuilt only when the schema text changes.

Every create looks its type up, and reading every worker's row for it cost a database round
trip per request; the specs are therefore kept for :data:`SPEC_TTL_SECONDS`. A type not in
the kept copy is always looked up afresh (a worker that just registered is usable at once);
only a changed schema of a known type may take that long to be seen by other processes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import msgspec
from jsonschema import SchemaError, ValidationError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from sqlalchemy import Engine, Row, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from taskscheduler.db.engine import reading
from taskscheduler.db.models import utcnow
from taskscheduler.db.tables import WORKERS
from taskscheduler.workers.views import TypeView, WorkerView, worker_view
from taskworker.contract.worker import (
    TypeSpec,
    Undo,
    WorkerHeartbeat,
    WorkerRegistration,
    derived_undo,
)
from taskworker.errors import InvalidInput, NotFound, ParamsInvalid

_w = WORKERS.c
#: A draining worker stays draining on heartbeats; any other status becomes active again.
_REVIVED = case((_w.status == "draining", "draining"), else_="active")
#: How long the registered types' specs are reused before they are read again.
SPEC_TTL_SECONDS = 2.0
#: Types that run commands as the worker's user: privileged whatever a registration says.
ALWAYS_PRIVILEGED = frozenset({"shell", "script"})


class Registry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: task type → (schema text, compiled validator)
        self._validators: dict[str, tuple[bytes, Validator]] = {}
        #: (monotonic time read, task type → spec of its newest registration)
        self._specs: tuple[float, dict[str, TypeSpec]] = (float("-inf"), {})

    def register(self, reg: WorkerRegistration, now: datetime | None = None) -> WorkerView:
        """Insert or replace the worker named ``reg.name``; registering again re-activates it."""
        for task_type, spec in reg.task_types.items():
            _check_schema(f"task_types.{task_type}.params_schema", spec.params_schema)
        when = now or utcnow()
        values = {
            "url": reg.url,
            "capacity": reg.capacity,
            "task_types": msgspec.to_builtins(reg.task_types),
            "status": "active",
            "running": 0,
            "heartbeat_at": when,
            "registered_at": when,
        }
        try:
            self._upsert(reg.name, values)
        except IntegrityError:  # a concurrent first registration of the same name won
            self._upsert(reg.name, values)
        self._specs = (float("-inf"), {})
        return worker_view(self._worker(reg.name))

    def _upsert(self, name: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            found = conn.execute(update(WORKERS).where(_w.name == name).values(values))
            if found.rowcount == 0:
                conn.execute(insert(WORKERS).values(name=name, **values))

    def heartbeat(self, name: str, beat: WorkerHeartbeat, now: datetime | None = None) -> None:
        values = {"heartbeat_at": now or utcnow(), "running": beat.running, "status": _REVIVED}
        self._update(name, values)

    def deregister(self, name: str) -> None:
        """The worker stopped on purpose: it gets no tasks until it registers again."""
        self._update(name, {"status": "stopped"})

    def drain(self, name: str) -> WorkerView:
        """Stop giving the worker new tasks; it finishes what it runs."""
        self._update(name, {"status": "draining"})
        return worker_view(self._worker(name))

    def _update(self, name: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            if conn.execute(update(WORKERS).where(_w.name == name).values(values)).rowcount == 0:
                raise NotFound("worker", name)

    def workers(self) -> list[WorkerView]:
        return [worker_view(row) for row in self._rows()]

    def types(self) -> list[TypeView]:
        rows = self._rows(newest_first=True)
        merged: dict[str, TypeView] = {}
        for name, spec in _merged_specs(rows).items():
            merged[name] = TypeView(**_spec_fields(spec), task_type=name)
        for row in rows:
            for task_type in row.task_types or {}:
                merged[task_type].workers.append(row.name)
        return [merged[name] for name in sorted(merged)]

    def type_spec(self, task_type: str) -> TypeSpec:
        """The spec of a registered type, or :class:`NotFound` (HTTP 404)."""
        read_at, specs = self._specs
        if task_type not in specs or time.monotonic() - read_at > SPEC_TTL_SECONDS:
            read_at, specs = time.monotonic(), _merged_specs(self._rows(newest_first=True))
            self._specs = (read_at, specs)
        spec = specs.get(task_type)
        if spec is None:
            raise NotFound("task type", task_type)
        return spec

    def undo(self, task_type: str) -> Undo:
        """What undoing a task of a registered type means (:class:`NotFound` if none is):
        as its newest registration declares it, or derived from its steps."""
        spec = self.type_spec(task_type)
        return spec.undo or derived_undo(spec.supports)

    def validate_params(self, task_type: str, spec: TypeSpec, params: dict[str, Any]) -> None:
        """Raise :class:`ParamsInvalid` naming the first bad field (``params.seconds``)."""
        error = best_match(self._validator(task_type, spec).iter_errors(params))
        if error is not None:
            raise ParamsInvalid(_field(error), error.message)

    def _validator(self, task_type: str, spec: TypeSpec) -> Validator:
        text = msgspec.json.encode(spec.params_schema, order="sorted")
        cached = self._validators.get(task_type)
        if cached is not None and cached[0] == text:
            return cached[1]
        compiled = validators.validator_for(spec.params_schema)(spec.params_schema)
        self._validators[task_type] = (text, compiled)
        return compiled

    def _worker(self, name: str) -> Row[Any]:
        with reading(self._engine) as conn:
            row = conn.execute(select(WORKERS).where(_w.name == name)).one_or_none()
        if row is None:
            raise NotFound("worker", name)
        return row

    def _rows(self, *, newest_first: bool = False) -> list[Row[Any]]:
        order = (_w.registered_at.desc(), _w.id.desc()) if newest_first else (_w.name,)
        with reading(self._engine) as conn:
            return list(conn.execute(select(WORKERS).order_by(*order)))


def _merged_specs(rows: list[Row[Any]]) -> dict[str, TypeSpec]:
    """Each type's spec from its newest registration (``rows`` newest first), privileged
    when any registration of it says so or its name is in :data:`ALWAYS_PRIVILEGED`."""
    raws: dict[str, Any] = {}
    privileged = set(ALWAYS_PRIVILEGED)
    for row in rows:
        for name, raw in (row.task_types or {}).items():
            raws.setdefault(name, raw)
            if isinstance(raw, dict) and raw.get("privileged") is True:
                privileged.add(name)
    specs = {name: msgspec.convert(raw, TypeSpec) for name, raw in raws.items()}
    return {
        name: msgspec.structs.replace(spec, privileged=True) if name in privileged else spec
        for name, spec in specs.items()
    }


def _spec_fields(spec: TypeSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in spec.__struct_fields__}


def _check_schema(field: str, schema: dict[str, Any]) -> None:
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(field, f"not a valid JSON schema: {exc.message}") from None


def _field(error: ValidationError) -> str:
    """The JSON path of the offending value, down to the missing or unexpected key."""
    path = "params" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in instance]
        path += f".{missing[0]}" if missing else ""
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(name for name in instance if name not in known)
        path += f".{extra[0]}" if extra else ""
    return path
