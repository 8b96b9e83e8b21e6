"""The ``taskconsole`` command tree."""

from __future__ import annotations

import click

from taskconsole.db import db


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskscheduler")
def main() -> None:
    """Operate TaskScheduler: submit, watch and steer tasks; migrate the database."""


main.add_command(db)
