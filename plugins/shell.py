"""``shell``: runs a command from an argument list (never through a shell).

The command gets its own process group, so a cancel or a timeout stops everything it
started (SIGTERM to the group, then SIGKILL after a grace period), and a pause stops the
group with SIGSTOP until it continues (SIGCONT). Output (stdout and stderr, merged) streams
line by line to the task log; the result keeps its last few kilobytes.

``rollback_argv``, when given, is the command that undoes ``argv`` (with the same ``cwd``,
``env`` and ``timeout``): a topology rolling back, or an operator, runs it. Without it the
rollback fails, saying that nothing can undo the command.

The command runs as the worker's user, so the type is privileged: only an admin may submit
it. It gets a minimal environment, never the worker's own (which holds the worker's
secrets): ``PATH``, ``HOME`` and ``LANG`` from the worker, plus the task's ``env``. Names
and values that the operating system cannot pass (a NUL byte, or ``=`` in a name) are
refused with the params, before anything is stored.

As a fan-out's child, ``{target}`` in an argument stands for the child's target, so one
command runs once per host: ``{"argv": ["ssh", "{target}", "uptime"], ...}``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from typing import Any

from taskworker import Cancelled, Task, TaskContext, TaskFailed
from taskworker.environment import minimal_environment

#: Between SIGTERM and SIGKILL when the command must stop.
KILL_GRACE_SECONDS = 3.0
#: How much of the output the result keeps.
TAIL_BYTES = 4096
#: A string the operating system can pass to a process: no NUL byte.
_PASSABLE = {"type": "string", "pattern": "^[^\\x00]*$", "maxLength": 65_536}
#: An environment variable's name: no ``=`` (it ends the name) and no NUL byte.
_ENV_NAME = {"type": "string", "pattern": "^[^=\\x00]+$", "maxLength": 256}
_ARGV = {"type": "array", "items": _PASSABLE, "minItems": 1, "maxItems": 10_000}


class Shell(Task):
    """Runs argv as a subprocess; a non-zero exit code fails the task."""

    task_type = "shell"
    privileged = True
    params_schema = {
        "type": "object",
        "properties": {
            "argv": _ARGV,
            "rollback_argv": _ARGV,
            "cwd": _PASSABLE,
            "env": {
                "type": "object",
                "propertyNames": _ENV_NAME,
                "additionalProperties": _PASSABLE,
                "maxProperties": 1_000,
            },
            "timeout": {"type": "number", "exclusiveMinimum": 0},
        },
        "required": ["argv"],
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def run(self, ctx: TaskContext) -> dict[str, Any]:
        return self._execute(ctx, ctx.params["argv"])

    def rollback(self, ctx: TaskContext) -> None:
        undo = ctx.params.get("rollback_argv")
        if undo is None:
            raise TaskFailed("no rollback_argv was given: nothing can undo the command")
        self._execute(ctx, undo)

    def _execute(self, ctx: TaskContext, argv: list[str]) -> dict[str, Any]:
        params = ctx.params
        if ctx.target is not None:
            argv = [arg.replace("{target}", str(ctx.target)) for arg in argv]
        try:
            self._proc = subprocess.Popen(
                argv,
                cwd=params.get("cwd"),
                env=minimal_environment(params.get("env")),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise TaskFailed(f"cannot start {argv[0]!r}: {exc}", retryable=False) from None
        ctx.log(f"started pid {self._proc.pid}: {argv!r}")
        tail: deque[str] = deque()
        reader = threading.Thread(target=_pump, args=(self._proc, ctx, tail), daemon=True)
        reader.start()
        try:
            self._supervise(ctx, params.get("timeout"))
        finally:
            if self._proc.poll() is None:
                self._stop()
            reader.join(timeout=KILL_GRACE_SECONDS)
        code = self._proc.returncode
        result = {"exit_code": code, "stdout_tail": "".join(tail)[-TAIL_BYTES:]}
        if code != 0:
            raise TaskFailed(f"exit code {code}", details=result)
        return result

    def _supervise(self, ctx: TaskContext, timeout: float | None) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout if timeout else None
        while self._proc.poll() is None:
            try:
                ctx.checkpoint()
            except Cancelled:
                ctx.log("cancelled: stopping the process group", "warning")
                raise
            if deadline is not None and time.monotonic() > deadline:
                ctx.log(f"timed out after {timeout} s: stopping the process group", "error")
                self._stop()
                raise TaskFailed(f"timed out after {timeout} s")
            ctx.wait(0.05)

    def _stop(self) -> None:
        """SIGTERM the whole group, SIGKILL it after the grace period."""
        assert self._proc is not None
        _signal_group(self._proc, signal.SIGCONT)  # a stopped group cannot act on SIGTERM
        _signal_group(self._proc, signal.SIGTERM)
        try:
            self._proc.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()

    def pause(self, ctx: TaskContext) -> None:
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGSTOP)
            ctx.log("paused: process group stopped")

    def resume(self, ctx: TaskContext) -> None:
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGCONT)
            ctx.log("continued: process group resumed")


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _pump(proc: subprocess.Popen[str], ctx: TaskContext, tail: deque[str]) -> None:
    """Stream output lines to the log, keeping the last TAIL_BYTES for the result."""
    assert proc.stdout is not None
    size = 0
    for line in proc.stdout:
        ctx.log(line.rstrip("\n"))
        tail.append(line)
        size += len(line)
        while size > TAIL_BYTES and len(tail) > 1:
            size -= len(tail.popleft())
    proc.stdout.close()
