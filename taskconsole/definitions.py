"""``topology submit`` and ``trigger add|list|show|pause|resume|delete`` (DESIGN §4 shapes).

Both post documents the operator keeps in files (a DAG, a timed or permanent definition);
the console checks that the file is JSON and leaves the rest to the scheduler, which names
the bad field. A scheduler without these endpoints answers 404 from its router, which the
client reports as "not supported by this scheduler".

Trigger routes: ``POST /v1/triggers`` (create), ``GET /v1/triggers`` (paged list,
``?include=retired``), ``GET|DELETE /v1/triggers/{id}`` (``DELETE`` retires: the trigger
stops firing and its tasks keep their link), ``PUT /v1/triggers/{id}?action=pause|resume``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from taskconsole.render import key_values, styled_status, triggers_table
from taskconsole.session import Session, pass_session, read_json_file

TOPOLOGY = "/v1/topology"
TRIGGERS = "/v1/triggers"

file_argument = click.argument("file", type=click.Path(path_type=Path))
trigger_id_argument = click.argument("trigger_id", type=click.IntRange(min=1))


@click.group()
def topology() -> None:
    """Tasks chained into a DAG under one control task."""


@topology.command("submit")
@file_argument
@pass_session
def submit_topology(session: Session, file: Path) -> None:
    """Submit the DAG in FILE: {name, on_failure, nodes: [{key, task_type, params, depends_on}]}."""
    body = read_json_file(file, "FILE")
    control = session.client.request("POST", TOPOLOGY, json=body, feature=TOPOLOGY)
    session.out.show(control, _control_view)


def _control_view(control: dict[str, Any]) -> Any:
    rows = {"control task": control["task_id"], "status": styled_status(control)}
    rows.update({f"  {key}": task_id for key, task_id in (control.get("children") or {}).items()})
    return key_values(rows)


@click.group()
def trigger() -> None:
    """Timed and permanent task definitions."""


@trigger.command("add")
@file_argument
@pass_session
def add_trigger(session: Session, file: Path) -> None:
    """Create the trigger defined in FILE: {name, kind, cron|interval_second|times, template}."""
    body = read_json_file(file, "FILE")
    created = session.client.request("POST", TRIGGERS, json=body, feature=TRIGGERS)
    session.out.show(created, key_values)


@trigger.command("list")
@click.option("--include-retired", is_flag=True, help="List retired triggers too.")
@pass_session
def list_triggers(session: Session, include_retired: bool) -> None:
    """List the triggers with their next fire time (retired ones with --include-retired)."""
    query = {"include": "retired"} if include_retired else None
    page = session.client.request("GET", TRIGGERS, params=query, feature=TRIGGERS)
    items = page["items"] if isinstance(page, dict) else page
    session.out.show(items, triggers_table)


@trigger.command("show")
@trigger_id_argument
@pass_session
def show_trigger(session: Session, trigger_id: int) -> None:
    """Show one trigger and its next fire times."""
    found = session.client.request("GET", f"{TRIGGERS}/{trigger_id}", feature=TRIGGERS)
    session.out.show(found, key_values)


def _switch(action: str, help_text: str) -> click.Command:
    @trigger_id_argument
    @pass_session
    def command(session: Session, trigger_id: int) -> None:
        path = f"{TRIGGERS}/{trigger_id}"
        changed = session.client.request(
            "PUT", path, params={"action": action}, json={}, feature=TRIGGERS
        )
        session.out.show(changed, lambda t: f"trigger {trigger_id} {action}d")

    command.__doc__ = help_text
    return trigger.command(action)(command)


_switch("pause", "Stop a trigger from firing until it is resumed.")
_switch("resume", "Let a paused trigger fire again, from its next fire time after now.")


@trigger.command("delete")
@trigger_id_argument
@pass_session
def delete_trigger(session: Session, trigger_id: int) -> None:
    """Retire a trigger: it fires no more; it and the tasks it created stay, linked."""
    session.client.request("DELETE", f"{TRIGGERS}/{trigger_id}", feature=TRIGGERS)
    session.out.show(
        {"trigger_id": trigger_id, "retired": True}, lambda d: f"trigger {trigger_id} retired"
    )
