"""Following log files by (inode, offset), across rotation and truncation.

A position is the file's inode and the byte offset after the last complete line consumed.
Only complete lines are returned (a line still being written waits for its newline), and the
caller persists the returned positions together with what it made of the lines.

- Rotation (``app.log`` renamed to ``app.log.1`` and a new ``app.log`` created): the path now
  has another inode. The rest of the old file is read first, found by its inode in the same
  directory, then the new file from its start. The glob should name live files only
  (``*.log``, not ``*.log*``): a rotated file that the glob matched would be a new file.
- Truncation (``copytruncate``, or ``> app.log``): the file is shorter than the offset, or
  it grew back past it with other bytes — the position keeps the last bytes before the
  offset (``tail``) and they no longer match; it is read again from the start.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Lines longer than this are cut (and counted) rather than held in memory without bound.
MAX_LINE_BYTES = 64 * 1024
#: At most this much is read from one file in one pass, so one busy file cannot starve others.
MAX_READ_BYTES = 4 * 1024 * 1024


#: How many bytes before the offset a position keeps, to recognise its file.
TAIL_BYTES = 32


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int
    #: The bytes just before ``offset`` (up to :data:`TAIL_BYTES`, within the last line).
    tail: bytes = b""


@dataclass(frozen=True)
class Line:
    path: str
    text: str
    #: Where the file stands after this line: persist it with the task the line made.
    position: Position


def follow(pattern: str, positions: Mapping[str, Position]) -> Iterator[Line]:
    """New complete lines of the files matching ``pattern``, after ``positions`` (by path).

    A path without a position is a new file and is read from its start.
    """
    live = {}
    for path in sorted(glob.glob(pattern)):
        inode = _inode(path)
        if inode is not None:
            live[inode] = path
    followed = {p.inode for p in positions.values()}
    for path, known in sorted(positions.items()):
        current = _inode(path)
        if current != known.inode:  # rotated: drain the old file wherever it went
            old_path = _find_inode(os.path.dirname(path) or ".", known.inode)
            if old_path is not None:
                yield from _read(path, old_path, known)
            if current is not None:
                yield from _read(path, path, Position(current, 0))
        elif current is not None:
            yield from _read(path, path, known)
    for inode, path in live.items():
        if path not in positions and inode not in followed:
            yield from _read(path, path, Position(inode, 0))


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _find_inode(directory: str, inode: int) -> str | None:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return None
    return next((e.path for e in entries if e.is_file() and e.inode() == inode), None)


def _read(key: str, path: str, start: Position) -> Iterator[Line]:
    """Lines of ``path`` from ``start``; positions are reported under ``key`` (the followed
    name), so a drained rotated file advances the position of the name it was rotated from."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; a generator holds it
    except FileNotFoundError:
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        offset = start.offset if start.offset <= size else 0  # shorter: truncated
        if offset and start.tail:
            handle.seek(offset - len(start.tail))
            if handle.read(len(start.tail)) != start.tail:  # other bytes: truncated, regrown
                offset = 0
        handle.seek(offset)
        chunk = handle.read(MAX_READ_BYTES)
    consumed = 0
    while True:
        end = chunk.find(b"\n", consumed)
        if end < 0:
            break
        raw = chunk[consumed:end][:MAX_LINE_BYTES]
        tail = chunk[max(consumed, end + 1 - TAIL_BYTES) : end + 1]
        consumed = end + 1
        yield Line(
            key,
            raw.decode("utf-8", "replace").rstrip("\r"),
            Position(start.inode, offset + consumed, tail),
        )
