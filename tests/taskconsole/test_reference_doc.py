"""docs/cli.md stays a reference of every command the console has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from taskconsole.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def command_paths(group: click.Group, prefix: str = "taskconsole") -> Iterator[str]:
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from command_paths(command, path)
        else:
            yield path


def test_every_command_is_documented_in_the_cli_reference() -> None:
    # Given the reference and the command tree
    text = DOC.read_text(encoding="utf-8")

    # When every leaf command is looked up in it
    missing = [path for path in command_paths(main) if path not in text]

    # Then none is missing
    assert missing == []
