# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Atomic file replacement: a reader sees the old file or the new one, never half of either.

The new content goes to a temporary file in the same directory (so the rename
cannot cross filesystems), is flushed and fsynced, gets the owner, group and
mode of the file it replaces, and is renamed over it; then the directory is
fsynced so the rename itself survives a crash. Any failure removes the
temporary file and leaves the original untouched.

The temporary file is ``.NAME.gbaws-tmp.XXXXXXXX`` (8 random characters) and
is flock'ed while it is written. A process killed mid-write (kill -9) leaves it
behind unlocked; the next write to NAME removes such leftovers: only files of
exactly that name pattern, and only when no live writer holds their lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import tempfile

#: Mode of a file that did not exist before, unless the caller asks otherwise.
DEFAULT_MODE = 0o644

#: Between ``.NAME`` and the random part of our temporary files' names.
TEMP_MARK = ".gbaws-tmp."
_RANDOM = re.compile(r"[a-z0-9_]{8}")  # tempfile's random names


def temp_prefix(name: str) -> str:
    """The start of the name of a temporary file for the file ``name``."""
    return f".{name}{TEMP_MARK}"


def remove_leftovers(path: str) -> list[str]:
    """Remove the temporary files a killed writer of ``path`` left; return their paths.

    Only regular files named exactly ``.NAME.gbaws-tmp.XXXXXXXX`` beside
    ``path``, and only when their lock is free (a writer still at work holds it).
    """
    directory, name = os.path.split(path)
    prefix = temp_prefix(name)
    removed = []
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return removed
    for entry in entries:
        if not (entry.startswith(prefix) and _RANDOM.fullmatch(entry[len(prefix):])):
            continue
        leftover = os.path.join(directory, entry)
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # a symlink, gone, or not ours to open
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.lstat(leftover)):
                os.unlink(leftover)
                removed.append(leftover)
        except OSError:
            continue  # locked: a live writer's
        finally:
            os.close(fd)
    return removed


def write_atomic(path: str, data: bytes | str, *, backup: bool = False, mode: int | None = None) -> str | None:
    """Replace ``path`` with ``data`` atomically; return the backup's path, or None.

    ``data`` given as text is written as UTF-8, without newline translation.
    An existing file keeps its owner, group and mode; a new file gets ``mode``
    (default 0o644) and the caller's owner. A symlink is followed: the file it
    points to is replaced, the link stays. With ``backup`` the previous content
    is first put, also atomically and with the same owner and mode, in
    ``PATH.bak`` (no backup when there was no previous file).

    Raises OSError when anything fails; its ``strerror`` names the path.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    target = os.path.realpath(path)
    try:
        try:
            old: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            old = None
        if old is not None and not stat.S_ISREG(old.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        backup_path = None
        if backup and old is not None:
            with open(target, "rb") as handle:
                previous = handle.read()
            backup_path = target + ".bak"
            _replace(backup_path, previous, old, DEFAULT_MODE)
        _replace(target, payload, old, DEFAULT_MODE if mode is None else mode)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot replace {path}: {exc.strerror or exc}") from exc
    return backup_path


def _replace(path: str, payload: bytes, like: os.stat_result | None, new_mode: int) -> None:
    """Write ``payload`` to a temporary sibling of ``path`` and rename it into place.

    The result gets the owner, group and mode of ``like`` (a stat of the file
    being replaced), or ``new_mode`` when there is no such file.
    """
    directory, name = os.path.split(path)
    directory = directory or "."
    remove_leftovers(path)
    fd, temp = _locked_temp(directory, name)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if like is not None:
                # chown before chmod: chown clears set-id bits.
                mine = os.fstat(fd)
                if (mine.st_uid, mine.st_gid) != (like.st_uid, like.st_gid):
                    os.fchown(fd, like.st_uid, like.st_gid)
                os.fchmod(fd, stat.S_IMODE(like.st_mode))
            else:
                os.fchmod(fd, new_mode)
            os.replace(temp, path)  # still locked: no cleaner takes it meanwhile
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _locked_temp(directory: str, name: str) -> tuple[int, str]:
    """A new temporary file, locked; retried when a cleaner removed it before the lock was taken."""
    for _attempt in range(10):
        fd, temp = tempfile.mkstemp(prefix=temp_prefix(name), dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.lstat(temp)):
                return fd, temp
        except FileNotFoundError:
            pass
        os.close(fd)
    raise OSError(errno.EAGAIN, f"cannot create a temporary file in {directory}")


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable; not every filesystem can, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
