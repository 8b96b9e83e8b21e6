"""Read-only commands: ``list``, ``show``, ``tree``, ``workers``, ``types``.

They need only the viewer role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from taskconsole.client import ApiClient, ConsoleError
from taskconsole.exit_codes import ExitCode
from taskconsole.render import task_detail, task_tree, tasks_table, types_table, workers_table
from taskconsole.session import Session, pass_session

#: Tasks ``list`` shows unless ``--limit`` or ``--all`` says otherwise.
DEFAULT_LIST_LIMIT = 50


def _since(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConsoleError(f"--since: {text!r} is not an ISO 8601 time", ExitCode.USAGE) from None
    if when.tzinfo is None:
        raise ConsoleError("--since: needs a time zone, e.g. a trailing Z", ExitCode.USAGE)
    return when.isoformat()


@click.command("list")
@click.option("--type", "task_type", help="Only tasks of this type.")
@click.option("--state", help="Only tasks in this state (init, running, finish, ...).")
@click.option("--outcome", help="Only finished tasks that ended so (succeeded, failed, ...).")
@click.option("--name", help="Only tasks with this task_name.")
@click.option("--parent", type=click.IntRange(min=1), help="Only children of this task.")
@click.option("--since", help="Only tasks created at or after this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIST_LIMIT, show_default=True)
@click.option("--all", "everything", is_flag=True, help="Every matching task (ignores --limit).")
@pass_session
def list_tasks(
    session: Session, since: str | None, limit: int, everything: bool, **filters: Any
) -> None:
    """List tasks, newest first."""
    filters = {"type": filters.pop("task_type"), **filters, "since": _since(since)}
    tasks = session.client.pages("/v1/tasks", None if everything else limit, **filters)
    session.out.show(tasks, tasks_table)


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@pass_session
def show(session: Session, task_id: int) -> None:
    """Show a task and its transition record."""
    task = session.client.task(task_id)
    task["transitions"] = session.client.get(f"/v1/tasks/{task_id}/transitions")
    session.out.show(task, task_detail)


@click.command()
@click.argument("task_id", type=click.IntRange(min=1))
@pass_session
def tree(session: Session, task_id: int) -> None:
    """Draw a task and its children (fan-out targets, topology members), recursively."""
    root = session.client.task(task_id)
    _add_children(session.client, root, seen={task_id})
    session.out.show(root, task_tree)


def _add_children(client: ApiClient, node: dict[str, Any], seen: set[int]) -> None:
    children = client.pages(f"/v1/tasks/{node['task_id']}/children", None)
    # A member can be both a child and a topology member of the same task: draw it once.
    node["children"] = [child for child in children if child["task_id"] not in seen]
    seen.update(child["task_id"] for child in node["children"])
    for child in node["children"]:
        _add_children(client, child, seen)


@click.command()
@pass_session
def workers(session: Session) -> None:
    """List the registered workers, their state and load."""
    session.out.show(session.client.get("/v1/workers"), workers_table)


@click.command()
@pass_session
def types(session: Session) -> None:
    """List the task types the workers serve (params marked * are required)."""
    session.out.show(session.client.get("/v1/types"), types_table)
