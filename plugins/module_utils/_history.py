# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One JSON object per line, appended: the ``--report`` file and the poll history are one writer.

``--report FILE`` is opened once, before ``--user`` drops privileges, and
only appended to (rotate it with logrotate's ``copytruncate``). The history
(``[MASTER] history_file``) is opened for each line, so it can rotate itself:
when a line would take it past ``history_max_bytes`` it becomes ``FILE.1``
(``.1`` becomes ``.2``, ... the oldest beyond ``keep`` is dropped) and a new
FILE is started. Readers (``gbrowse_aws_balancer simulate``, a post-mortem
with ``jq``) read ``FILE.3 FILE.2 FILE.1 FILE`` in that order.
"""

from __future__ import annotations

import json
import os
import typing as t

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import HISTORY_KEEP


def rotation_due(size: int, line: int, max_bytes: int) -> bool:
    """Whether a file of ``size`` bytes must be rotated before a line of ``line`` bytes is added.

    A file that is empty is never rotated: a line longer than the cap still gets written.
    """
    return max_bytes > 0 and size > 0 and size + line > max_bytes


def rotate(path: str, keep: int = HISTORY_KEEP) -> None:
    """``path`` -> ``path.1`` -> ``path.2`` ... ``path.KEEP`` (the oldest dropped)."""
    for number in range(keep - 1, 0, -1):
        older = f"{path}.{number}"
        if os.path.exists(older):
            os.replace(older, f"{path}.{number + 1}")
    if keep > 0:
        os.replace(path, f"{path}.1")
    else:
        os.unlink(path)


class JsonLines:
    """Appends one JSON object per line to ``path``; rotates at ``max_bytes`` (0: never)."""

    def __init__(self, path: str, *, max_bytes: int = 0, keep: int = HISTORY_KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._handle: t.TextIO | None = None

    @classmethod
    def opened(cls, path: str) -> JsonLines:
        """Open now and keep the file open (``--report``: before privileges are dropped); no rotation."""
        lines = cls(path)
        lines._handle = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        return lines

    def append(self, record: t.Mapping[str, t.Any]) -> None:
        """Write ``record`` as one line (OSError when the file cannot be written)."""
        line = json.dumps(record, sort_keys=True) + "\n"
        if self._handle is not None:
            self._handle.write(line)
            self._handle.flush()
            return
        data = line.encode("utf-8")
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        if rotation_due(size, len(data), self.max_bytes):
            rotate(self.path, self.keep)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(self.path, flags, 0o644)
        try:
            os.write(fd, data)  # one write of one line: a reader never sees half of it in the middle
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
