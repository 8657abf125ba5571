# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _atomic
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import write_atomic

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    "data, expected",
    [
        ("plain\n", b"plain\n"),
        ("crlf\r\nkept\r\n", b"crlf\r\nkept\r\n"),
        ("caf\u00e9 \u2603", "caf\u00e9 \u2603".encode("utf-8")),
        (b"\x00\xff raw bytes", b"\x00\xff raw bytes"),
        ("", b""),
    ],
)
def test_writes_exact_bytes(tmp_path, data, expected):
    target = tmp_path / "f.conf"
    assert write_atomic(str(target), data) is None
    assert target.read_bytes() == expected
    assert sorted(os.listdir(tmp_path)) == ["f.conf"]


@pytest.mark.parametrize("mode, expected", [(None, 0o644), (0o600, 0o600), (0o640, 0o640)])
def test_new_file_mode(tmp_path, mode, expected):
    target = tmp_path / "new.conf"
    write_atomic(str(target), "x", mode=mode)
    assert mode_of(target) == expected


@pytest.mark.parametrize("old_mode", [0o600, 0o640, 0o664, 0o444])
def test_existing_file_keeps_its_mode(tmp_path, old_mode):
    target = tmp_path / "old.conf"
    target.write_text("old")
    os.chmod(target, old_mode)
    write_atomic(str(target), "new", mode=0o777)  # mode only applies to new files
    assert target.read_text() == "new"
    assert mode_of(target) == old_mode


@needs_root
def test_existing_file_keeps_owner_and_group(tmp_path):
    target = tmp_path / "owned.conf"
    target.write_text("old")
    os.chown(target, 4242, 4343)
    os.chmod(target, 0o640)
    write_atomic(str(target), "new")
    info = os.stat(target)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o640)


@needs_root
def test_backup_keeps_old_bytes_owner_and_mode(tmp_path):
    target = tmp_path / "aws_balancer.conf"
    target.write_bytes(b"old\r\ncontent")
    os.chown(target, 4242, 4343)
    os.chmod(target, 0o600)
    backup = write_atomic(str(target), "new", backup=True)
    assert backup == str(target) + ".bak"
    assert (tmp_path / "aws_balancer.conf.bak").read_bytes() == b"old\r\ncontent"
    assert target.read_text() == "new"
    for path in (target, tmp_path / "aws_balancer.conf.bak"):
        info = os.stat(path)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o600)


def test_backup_replaces_an_older_backup(tmp_path):
    target = tmp_path / "c.conf"
    target.write_text("one")
    write_atomic(str(target), "two", backup=True)
    write_atomic(str(target), "three", backup=True)
    assert (tmp_path / "c.conf.bak").read_text() == "two"
    assert target.read_text() == "three"


def test_backup_of_a_new_file_is_none(tmp_path):
    target = tmp_path / "c.conf"
    assert write_atomic(str(target), "x", backup=True) is None
    assert sorted(os.listdir(tmp_path)) == ["c.conf"]


def test_without_backup_no_bak(tmp_path):
    target = tmp_path / "c.conf"
    target.write_text("old")
    assert write_atomic(str(target), "new") is None
    assert sorted(os.listdir(tmp_path)) == ["c.conf"]


def test_symlink_is_followed(tmp_path):
    real = tmp_path / "real.conf"
    real.write_text("old")
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    write_atomic(str(link), "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_inode_changes_readers_keep_old_file(tmp_path):
    target = tmp_path / "c.conf"
    target.write_text("old")
    with open(target) as reader:
        write_atomic(str(target), "new")
        assert reader.read() == "old"  # the rename leaves an open reader on the old file
    assert target.read_text() == "new"


def _boom(*_args, **_kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("victim", ["write", "fsync", "fchmod", "replace"])
@pytest.mark.parametrize("existing", [True, False])
def test_failure_leaves_original_and_no_temp_file(tmp_path, monkeypatch, victim, existing):
    target = tmp_path / "c.conf"
    if existing:
        target.write_bytes(b"original")
    monkeypatch.setattr(_atomic.os, victim, _boom)
    with pytest.raises(OSError) as caught:
        write_atomic(str(target), "replacement", backup=True)
    monkeypatch.undo()
    assert "cannot replace" in str(caught.value) and str(target) in str(caught.value)
    assert "No space left on device" in caught.value.strerror
    if existing:
        assert target.read_bytes() == b"original"
    assert sorted(os.listdir(tmp_path)) == (["c.conf"] if existing else [])


@needs_root
def test_failed_chown_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "c.conf"
    target.write_bytes(b"original")
    os.chown(target, 4242, 4343)
    monkeypatch.setattr(_atomic.os, "fchown", _boom)
    with pytest.raises(OSError):
        write_atomic(str(target), "replacement")
    monkeypatch.undo()
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["c.conf"]


def test_interrupt_also_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "c.conf"

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(str(target), "x")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_directory_target_is_refused(tmp_path):
    target = tmp_path / "dir.conf"
    target.mkdir()
    with pytest.raises(OSError, match="not a regular file"):
        write_atomic(str(target), "x")
    assert target.is_dir()
    assert sorted(os.listdir(tmp_path)) == ["dir.conf"]


def test_missing_directory(tmp_path):
    with pytest.raises(OSError, match="cannot replace"):
        write_atomic(str(tmp_path / "nope" / "c.conf"), "x")


def test_temp_file_is_hidden_sibling(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((os.path.dirname(src), os.path.basename(src), dst))
        return real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", spy)
    write_atomic(str(tmp_path / "c.conf"), "x")
    ((directory, name, dst),) = seen
    assert directory == str(tmp_path)
    assert name.startswith(".c.conf.")
    assert dst == str(tmp_path / "c.conf")


def test_failure_after_backup_keeps_original_and_backup(tmp_path, monkeypatch):
    target = tmp_path / "c.conf"
    target.write_bytes(b"original")
    calls = []
    real_replace = os.replace

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            _boom()
        return real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", second_fails)
    with pytest.raises(OSError):
        write_atomic(str(target), "replacement", backup=True)
    monkeypatch.undo()
    assert calls == [str(target) + ".bak", str(target)]
    assert target.read_bytes() == b"original"
    assert (tmp_path / "c.conf.bak").read_bytes() == b"original"
    assert sorted(os.listdir(tmp_path)) == ["c.conf", "c.conf.bak"]


# A writer killed mid-write (kill -9) leaves its temporary file; the next write removes it.
_KILLED_WRITER = """
import os, sys, time
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _atomic
_atomic.os.fsync = lambda fd: (print("writing", flush=True), time.sleep(60))
_atomic.write_atomic(sys.argv[1], "new content that never lands\\n")
"""


def _writer_stuck_in_fsync(target):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "writing\n"
    return child


def test_leftover_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "renderfarm.conf"
    target.write_text("old\n")
    child = _writer_stuck_in_fsync(target)
    child.kill()
    child.wait()
    child.stdout.close()
    leftovers = [name for name in os.listdir(tmp_path) if name != "renderfarm.conf"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".renderfarm.conf.gbaws-tmp.")
    assert target.read_text() == "old\n"
    write_atomic(str(target), "next\n")
    assert sorted(os.listdir(tmp_path)) == ["renderfarm.conf"]
    assert target.read_text() == "next\n"


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    target = tmp_path / "renderfarm.conf"
    target.write_text("old\n")
    child = _writer_stuck_in_fsync(target)
    try:
        (live,) = [name for name in os.listdir(tmp_path) if name != "renderfarm.conf"]
        write_atomic(str(target), "mine\n")
        assert live in os.listdir(tmp_path)  # still being written by the child
        assert target.read_text() == "mine\n"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


@pytest.mark.parametrize(
    "foreign",
    [
        ".renderfarm.conf.abcd1234",  # another tool's temp file (tempfile's default naming)
        ".renderfarm.conf.gbaws-tmp.abc",  # random part of the wrong length
        ".renderfarm.conf.gbaws-tmp.ABCD1234",  # not tempfile's alphabet
        ".renderfarm.conf.gbaws-tmp.abcd1234.orig",
        ".other.conf.gbaws-tmp.abcd1234",  # another file's leftover
        "renderfarm.conf.gbaws-tmp.abcd1234",  # not hidden
    ],
)
def test_foreign_similar_looking_files_are_left_alone(tmp_path, foreign):
    target = tmp_path / "renderfarm.conf"
    (tmp_path / foreign).write_text("not ours\n")
    write_atomic(str(target), "x\n")
    assert (tmp_path / foreign).read_text() == "not ours\n"


def test_leftover_pattern_directory_and_symlink_are_left_alone(tmp_path):
    target = tmp_path / "renderfarm.conf"
    (tmp_path / ".renderfarm.conf.gbaws-tmp.dir00000").mkdir()
    (tmp_path / "elsewhere").write_text("keep\n")
    (tmp_path / ".renderfarm.conf.gbaws-tmp.link0000").symlink_to(tmp_path / "elsewhere")
    write_atomic(str(target), "x\n")
    assert sorted(os.listdir(tmp_path)) == [
        ".renderfarm.conf.gbaws-tmp.dir00000",
        ".renderfarm.conf.gbaws-tmp.link0000",
        "elsewhere",
        "renderfarm.conf",
    ]
