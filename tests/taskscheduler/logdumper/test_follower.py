"""Following real files: appends, partial lines, rotation, truncation, restarts in between."""

from __future__ import annotations

import os
from pathlib import Path

from taskscheduler.logdumper.follower import Position, follow


class Reader:
    """What the LogDumper loop does: read, then persist the positions (here: keep them)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.positions: dict[str, Position] = {}

    def poll(self) -> list[str]:
        texts = []
        for line in follow(self.pattern, self.positions):
            texts.append(line.text)
            self.positions[line.path] = line.position
        return texts


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


def test_new_complete_lines_are_read_once(tmp_path):
    log = tmp_path / "app.log"
    append(log, "one\ntwo\n")
    reader = Reader(str(tmp_path / "*.log"))
    assert reader.poll() == ["one", "two"]
    assert reader.poll() == []
    append(log, "three\n")
    assert reader.poll() == ["three"]


def test_a_line_still_being_written_waits_for_its_newline(tmp_path):
    log = tmp_path / "app.log"
    append(log, "done\nhal")
    reader = Reader(str(log))
    assert reader.poll() == ["done"]
    append(log, "f\n")
    assert reader.poll() == ["half"]


def test_rotation_drains_the_old_file_then_reads_the_new_one(tmp_path):
    # Given a followed file with one line read and one written after the last poll
    log = tmp_path / "app.log"
    append(log, "before\n")
    reader = Reader(str(tmp_path / "*.log"))
    assert reader.poll() == ["before"]
    append(log, "late in the old file\n")
    # When it is rotated and the new file gets lines
    os.rename(log, tmp_path / "app.log.1")
    append(log, "first of the new file\n")
    # Then nothing is skipped or repeated
    assert reader.poll() == ["late in the old file", "first of the new file"]
    assert reader.poll() == []


def test_truncation_starts_the_file_over(tmp_path):
    log = tmp_path / "app.log"
    append(log, "a long first line\n")
    reader = Reader(str(log))
    reader.poll()
    log.write_text("")
    append(log, "after\n")
    assert reader.poll() == ["after"]


def test_a_truncated_file_that_grew_back_past_the_offset_starts_over(tmp_path):
    log = tmp_path / "app.log"
    append(log, "host db-1 is down\n")
    reader = Reader(str(log))
    reader.poll()
    log.write_text("")
    append(log, "host db-9 is down\nmore\n")  # as long as before, and then some
    assert reader.poll() == ["host db-9 is down", "more"]


def test_a_restart_with_persisted_positions_neither_repeats_nor_skips(tmp_path):
    log = tmp_path / "app.log"
    append(log, "1\n2\n")
    first = Reader(str(log))
    assert first.poll() == ["1", "2"]
    append(log, "3\n")
    os.rename(log, tmp_path / "app.log.1")
    append(log, "4\n")
    # A new process starts from what the first one persisted
    second = Reader(str(log))
    second.positions = dict(first.positions)
    assert second.poll() == ["3", "4"]


def test_new_files_matching_the_glob_are_picked_up(tmp_path):
    reader = Reader(str(tmp_path / "*.log"))
    assert reader.poll() == []
    append(tmp_path / "b.log", "from b\n")
    assert reader.poll() == ["from b"]
