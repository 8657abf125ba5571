# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The poll history: one JSON line per poll, size-capped and rotated, replayable by simulate."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._history import JsonLines, rotation_due
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import InputError, read_trace


@pytest.mark.parametrize(
    "size, line, cap, due",
    [(0, 50, 100, False), (0, 500, 100, False), (60, 40, 100, False), (61, 40, 100, True), (10**9, 1, 0, False)],
)
def test_rotation_is_due_when_the_line_would_pass_the_cap(size, line, cap, due):
    assert rotation_due(size, line, cap) is due


def test_the_history_rotates_keeping_three(tmp_path):
    path = tmp_path / "history.jsonl"
    history = JsonLines(str(path), max_bytes=100, keep=3)
    for n in range(12):
        history.append({"poll": n, "pad": "x" * 20})  # 36 bytes a line: two lines a file
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["history.jsonl", "history.jsonl.1", "history.jsonl.2", "history.jsonl.3"]
    polls = [
        [json.loads(line)["poll"] for line in (tmp_path / name).read_text().splitlines()]
        for name in ("history.jsonl.3", "history.jsonl.2", "history.jsonl.1", "history.jsonl")
    ]
    assert polls == [[4, 5], [6, 7], [8, 9], [10, 11]]  # oldest first; 0-3 rotated away
    assert all(os.path.getsize(tmp_path / name) <= 100 for name in files)
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_the_report_file_is_kept_open_and_appended(tmp_path):
    path = tmp_path / "report.jsonl"
    path.write_text('{"old": 1}\n')
    report = JsonLines.opened(str(path))
    moved = tmp_path / "moved.jsonl"
    path.rename(moved)  # opened once (before privileges are dropped): later lines need no open
    report.append({"b": 2, "a": 1})
    report.close()
    assert moved.read_text() == '{"old": 1}\n{"a": 1, "b": 2}\n' and not path.exists()


def history_line(at: float, requests: int | None, seconds: float) -> str:
    return json.dumps({"time": at, "requests": requests, "seconds": seconds, "load": 1.0, "min": 0, "max": 1}) + "\n"


def test_simulate_replays_the_history_and_its_rotated_files(tmp_path):
    (tmp_path / "history.jsonl.1").write_text(history_line(1000.0, None, 0.0) + history_line(1030.0, 60, 30.0))
    (tmp_path / "history.jsonl").write_text(history_line(1060.0, 90, 30.0) + "\n")
    trace = read_trace([str(tmp_path / "history.jsonl*")])
    assert sum(trace.counts) == 150 and trace.bad == 0
    assert (trace.start, trace.seconds) == (1001, 60)  # the seconds after the first counted poll began
    assert trace.counts[:30] == [2] * 30 and trace.counts[30:] == [3] * 30


def test_simulate_refuses_a_history_of_garbage(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"time": "soon"}\n{not json\n')
    with pytest.raises(InputError) as info:
        read_trace([str(path)])
    assert f"{path}:1: expected a balancer history line" in str(info.value)
