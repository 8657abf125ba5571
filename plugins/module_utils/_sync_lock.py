# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A lock file that outlives the process taking it, and knows when its owner died.

A sync runs as many short processes (one per Ansible task), so an ``flock``
held by one of them would be released at once. The lock is a small JSON file
instead, naming its owner: the ``ansible-playbook`` process that runs the sync
(its PID and start time, so a recycled PID is not mistaken for it). The lock
is stale, and taken over, once that process is gone; a lock whose owner could
not be found (a master driven over ssh from another machine) goes stale after
``stale_after`` seconds. Every decision is made under an ``flock`` on a
sidecar file, so two takers never both win.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import time
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import write_atomic

#: The program names of an Ansible controller process.
CONTROLLERS = ("ansible-playbook",)


class LockError(Exception):
    """The lock is held by someone else, or its file is unusable."""


@dataclass(frozen=True)
class Owner:
    """A process that owns the lock: its PID and its start time in clock ticks since boot."""

    pid: int
    start: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return text.rpartition(")")[2].split()


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), or None when there is no such live process."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return None
    try:
        return int(fields[19])  # field 22 of /proc/PID/stat
    except (IndexError, ValueError):
        return None


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    try:
        return int(fields[1]) if fields else None  # field 4
    except (IndexError, ValueError):
        return None


def _is_controller(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(arg.decode("utf-8", "replace")) for arg in argv[:2]]
    return any(name in CONTROLLERS for name in names)


def find_controller(pid: int | None = None) -> Owner | None:
    """The outermost ``ansible-playbook`` among the ancestors of ``pid`` (default: this process).

    Outermost because Ansible's workers are forks of the controller with the
    same command line, and they end with each task.
    """
    found = None
    current = os.getppid() if pid is None else pid
    seen = set()
    while current and current > 1 and current not in seen:
        seen.add(current)
        if _is_controller(current):
            start = process_start(current)
            if start is not None:
                found = Owner(current, start)
        current = _parent(current)
    return found


def alive(owner: Owner) -> bool:
    return process_start(owner.pid) == owner.start


@dataclass(frozen=True)
class LockState:
    """What is in a lock file."""

    token: str
    host: str
    since: float
    owner: Owner | None
    purpose: str

    def describe(self) -> str:
        who = f"pid {self.owner.pid}" if self.owner else "an unknown process"
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.since))
        return f"{self.purpose or 'a sync'} by {who} on {self.host} since {when}"

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "token": self.token,
            "host": self.host,
            "since": self.since,
            "pid": self.owner.pid if self.owner else None,
            "start": self.owner.start if self.owner else None,
            "purpose": self.purpose,
        }


def read(path: str) -> LockState | None:
    """The lock at ``path``, None when there is none. A file that is not a lock raises LockError."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        owner = None
        if data.get("pid") is not None:
            owner = Owner(int(data["pid"]), int(data["start"]))
        return LockState(
            token=str(data["token"]),
            host=str(data.get("host", "")),
            since=float(data.get("since", 0)),
            owner=owner,
            purpose=str(data.get("purpose", "")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LockError(f"{path}: not a gbrowse_aws lock file ({exc}); remove it if no sync is running") from None


def stale(state: LockState, stale_after: float, now: float | None = None) -> bool:
    """True when the lock's owner is gone (or, owner unknown, it is older than ``stale_after`` seconds)."""
    if state.owner is not None:
        return not alive(state.owner)
    return (time.time() if now is None else now) - state.since > stale_after


@contextlib.contextmanager
def _guard(path: str, check: bool = False) -> t.Iterator[None]:
    """Serialize lock changes through ``PATH.guard``. Check mode changes nothing, so it needs no guard
    (and creates no file): it decides from what it reads."""
    if check:
        yield
        return
    with open(path + ".guard", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: str, state: LockState) -> None:
    # The collection's one atomic writer: a reader never sees half a lock.
    write_atomic(path, json.dumps(state.as_dict()) + "\n")


@dataclass(frozen=True)
class Acquired:
    """The outcome of :func:`acquire`."""

    state: LockState
    replaced: LockState | None  # a stale lock taken over


def acquire(
    path: str,
    *,
    owner: Owner | None,
    purpose: str = "",
    stale_after: float = 86400.0,
    check: bool = False,
) -> Acquired:
    """Take the lock at ``path`` for ``owner``; LockError when a live owner holds it.

    With ``check``, decide as if taking it but write nothing.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if check and not os.path.isdir(directory):
        return Acquired(LockState(secrets.token_hex(8), socket.gethostname(), time.time(), owner, purpose), None)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    new = LockState(secrets.token_hex(8), socket.gethostname(), time.time(), owner, purpose)
    with _guard(path, check):
        current = read(path)
        if current is not None and not stale(current, stale_after):
            raise LockError(f"{path} is held: {current.describe()}")
        if not check:
            _write(path, new)
    return Acquired(new, current)


def release(path: str, token: str, *, check: bool = False) -> bool:
    """Remove the lock if it is still the one ``token`` names. True when it was removed."""
    if not os.path.exists(path):
        return False
    with _guard(path, check):
        current = read(path)
        if current is None or current.token != token:
            return False
        if not check:
            os.unlink(path)
    return True


def break_stale(path: str, stale_after: float = 86400.0, *, check: bool = False) -> LockState | None:
    """Remove the lock if its owner is gone; return what was removed. LockError when it is live."""
    if not os.path.exists(path):
        return None
    with _guard(path, check):
        current = read(path)
        if current is None:
            return None
        if not stale(current, stale_after):
            raise LockError(f"{path} is held: {current.describe()}")
        if not check:
            os.unlink(path)
    return current
