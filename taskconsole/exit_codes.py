"""What ``taskconsole`` exit codes mean (DESIGN §6), in one place for scripts to rely on."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    TASK_FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNREACHABLE = 5
