"""What the console prints: rich tables for people, plain JSON for scripts.

Every command hands its data to :class:`Output` together with a way to draw it; ``--json``
prints the data as the API gave it (stable for ``jq``), otherwise the drawing. Diagnostics
go to stderr so that stdout stays parseable in both modes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

#: Colours of a task's state (or of its outcome once it is finished).
STYLES = {
    "succeeded": "green",
    "failed": "red",
    "rollback_failed": "red",
    "timed_out": "red",
    "rolled_back": "yellow",
    "cancelled": "yellow",
    "running": "cyan",
    "pause": "magenta",
    "fail": "red",
    "rollback": "yellow",
}


class Output:
    """Where a command's answer goes, in the mode the operator chose."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)

    def show(self, data: Any, draw: Callable[[Any], RenderableType | str]) -> None:
        if self.as_json:
            self.json(data)
        else:
            self.console.print(draw(data))

    def json(self, data: Any, *, indent: int | None = 2) -> None:
        self.console.out(json.dumps(data, indent=indent), highlight=False)

    def progress(self) -> AbstractContextManager[Progress]:
        """A live bar for people (none with ``--json``); a pipe gets it once, at the end."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[message]}"),
            console=self.console,
            disable=self.as_json,
        )


def status_of(task: dict[str, Any]) -> str:
    """``finish (succeeded)`` or the state alone: how a task's position reads in one word."""
    outcome = task.get("outcome")
    state = str(task["task_status"])
    return f"{state} ({outcome})" if outcome else state


def styled_status(task: dict[str, Any]) -> str:
    style = STYLES.get(task.get("outcome") or task["task_status"])
    text = status_of(task)
    return f"[{style}]{text}[/{style}]" if style else text


def percent(task: dict[str, Any]) -> float:
    return float((task.get("progress") or {}).get("percent") or 0.0)


def when(stamp: str | None) -> str:
    """An API time (ISO 8601, UTC) to the second, which is what a table has room for."""
    return (stamp or "")[:19].replace("T", " ")


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = Table("ID", "TYPE", "NAME", "STATUS", "PROGRESS", "UPDATED", box=None)
    for task in tasks:
        table.add_row(
            str(task["task_id"]),
            task["task_type"],
            task.get("task_name") or "",
            styled_status(task),
            f"{percent(task):.0f}%",
            when(task.get("updated_at")),
        )
    return table


#: The fields ``show`` draws first, in this order; the rest follow when set.
_HEADLINE = ("task_id", "task_type", "task_name", "task_status", "outcome", "error", "progress")
#: How many of a task's last transition records tell why it did not succeed.
LAST_RECORDS = 5


def error_text(error: Any) -> str:
    """A task's error as a person reads it: its message, then whatever else it says."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        rest = {k: v for k, v in error.items() if k != "message" and v is not None}
        return f"{error['message']} {json.dumps(rest)}" if rest else error["message"]
    return error if isinstance(error, str) else json.dumps(error)


def failure(task: dict[str, Any], records: list[dict[str, Any]]) -> Table:
    """Why a task did not succeed: its error, and its last records, whose reasons say what
    the scheduler saw (a lost heartbeat, a deadline, a lock timeout, an operator's cancel)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if task.get("error") is not None:
        grid.add_row("error", Text(error_text(task["error"]), style="red"))
    if records:
        grid.add_row("last transitions", transitions_table(records[-LAST_RECORDS:]))
    return grid


def task_detail(task: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    ordered = [*_HEADLINE, *(k for k in task if k not in _HEADLINE and k != "transitions")]
    for key in ordered:
        value = task.get(key)
        if value in (None, [], {}):
            continue
        shown: RenderableType
        if key == "progress":
            shown = Text(f"{percent(task):.0f}% {value.get('message') or ''}".rstrip())
        elif key == "task_status":
            shown = styled_status(task)
        elif key == "error":
            shown = Text(error_text(value), style="red")
        else:
            shown = Text(json.dumps(value) if isinstance(value, dict | list) else str(value))
        grid.add_row(key, shown)
    records = task.get("transitions")
    if records:
        grid.add_row("", "")
        grid.add_row("transitions", transitions_table(records))
    return grid


def transitions_table(records: Iterable[dict[str, Any]]) -> Table:
    table = Table(box=None)
    for heading in ("AT", "TRIGGER", "FROM", "TO"):
        table.add_column(heading, no_wrap=True)
    table.add_column("ACTOR", overflow="fold")
    table.add_column("REASON", overflow="fold")  # all of it: it says why
    for record in records:
        table.add_row(
            when(record["at"]),
            record["trigger"],
            record["from_state"],
            record["to_state"],
            Text(record["actor"]),  # as written: a reason's [brackets] are not markup
            Text(record.get("reason") or ""),
        )
    return table


def log_line(item: dict[str, Any]) -> str:
    return f"{when(item['at'])} {item['level'].upper():7} [{item['attempt']}] {item['message']}"


def task_tree(node: dict[str, Any]) -> Tree:
    """A task and its children, recursively, each with its state."""
    tree = Tree(_node_label(node))
    _grow(tree, node)
    return tree


def _grow(branch: Tree, node: dict[str, Any]) -> None:
    for child in node.get("children") or []:
        _grow(branch.add(_node_label(child)), child)


def _node_label(task: dict[str, Any]) -> str:
    name = f" {task['task_name']}" if task.get("task_name") else ""
    key = f" [{task['node_key']}]" if task.get("node_key") else ""
    target = f" → {task['target']}" if task.get("target") is not None else ""
    plain = escape(f"#{task['task_id']} {task['task_type']}{key}{name}{target}")
    return f"{plain}  {styled_status(task)}"


def workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table("NAME", "URL", "STATUS", "RUNNING", "TYPES", "HEARTBEAT", box=None)
    for worker in workers:
        table.add_row(
            worker["name"],
            worker["url"],
            worker["status"],
            f"{worker['running']}/{worker['capacity']}",
            ", ".join(worker["task_types"]),
            when(worker["heartbeat_at"]),
        )
    return table


def types_table(types: list[dict[str, Any]]) -> Table:
    table = Table("TYPE", "KIND", "PARAMS", "SUPPORTS", "UNDO", "WORKERS", box=None)
    for spec in types:
        schema = spec.get("params_schema") or {}
        required = set(schema.get("required") or [])
        names = [f"{p}*" if p in required else p for p in schema.get("properties") or {}]
        table.add_row(
            spec["task_type"],
            "sync" if spec.get("blocking", True) else "async",
            ", ".join(names),
            ", ".join(spec.get("supports") or []),
            spec.get("undo") or "",
            ", ".join(spec.get("workers") or []),
        )
    return table


def triggers_table(triggers: list[dict[str, Any]]) -> Table:
    table = Table("ID", "NAME", "KIND", "SCHEDULE", "ENABLED", "NEXT FIRE", box=None)
    for trigger in triggers:
        table.add_row(
            str(trigger["trigger_id"]),
            trigger.get("name") or "",
            trigger.get("kind") or "",
            schedule_of(trigger),
            trigger_enabled(trigger),
            when(trigger["next_fire_time"]) if trigger.get("next_fire_time") else "-",
        )
    return table


def trigger_enabled(trigger: dict[str, Any]) -> str:
    """yes, no (paused) or retired (``DELETE`` retired it: it fires no more)."""
    if trigger.get("retired_at"):
        return "retired"
    return "yes" if trigger.get("enabled", True) else "no"


def schedule_of(trigger: dict[str, Any]) -> str:
    if trigger.get("cron"):
        return f"cron {trigger['cron']}"
    if trigger.get("interval_second"):
        return f"every {trigger['interval_second']} s"
    if trigger.get("times"):
        return f"{len(trigger['times'])} time(s)"
    return ""


def key_values(data: dict[str, Any]) -> Table:
    """Any flat object (a trigger, a control task's children) as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        grid.add_row(str(key), shown)
    return grid
