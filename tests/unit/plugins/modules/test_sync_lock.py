# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sync_lock's arguments: state, the token a release needs; check mode takes, releases and breaks nothing.

The lock's logic (owners, staleness) is tests/system/test_sync_lock.py.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.modules import sync_lock


@pytest.fixture
def lock(tmp_path):
    return tmp_path / "sync.lock"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({}, ["path"]),
        ({"state": "absent"}, ["state", "absent", "token"]),
        ({"state": "held"}, ["state", "present", "absent", "stale"]),
        ({"stale_after": "a day"}, ["stale_after"]),
    ],
    ids=["path-required", "release-needs-token", "state-choices", "stale-after-int"],
)
def test_ansible_refuses_the_arguments_naming_them(run, lock, args, words):
    if "path" not in words:
        args = dict(args, path=str(lock))
    out = run(sync_lock.main, args)
    assert out.refused(*words), out.msg
    assert not lock.exists()


def test_take_then_release_with_the_token(run, lock):
    took = run(sync_lock.main, {"path": str(lock), "purpose": "unit"})
    assert not took.failed and took.result["changed"]
    assert json.loads(lock.read_text())["token"] == took.result["token"]
    # The token is what a later task releases with: a result, not a secret.
    assert took.result["token"] not in took.module.no_log_values
    held = run(sync_lock.main, {"path": str(lock)})
    assert held.failed and held.msg.startswith(f"{lock} is held: ")
    released = run(sync_lock.main, {"path": str(lock), "state": "absent", "token": took.result["token"]})
    assert not released.failed and released.result["changed"] and not lock.exists()


def test_check_mode_takes_no_lock(run, lock):
    out = run(sync_lock.main, {"path": str(lock)}, check_mode=True)
    assert not out.failed and out.result["changed"] and out.result["token"]
    assert list(lock.parent.iterdir()) == []  # neither the lock nor its guard file


def test_check_mode_takes_no_lock_in_a_missing_directory(run, tmp_path):
    out = run(sync_lock.main, {"path": str(tmp_path / "run" / "sync.lock")}, check_mode=True)
    assert not out.failed and out.result["changed"]
    assert list(tmp_path.iterdir()) == []


def test_check_mode_releases_nothing(run, lock):
    took = run(sync_lock.main, {"path": str(lock)})
    before = lock.read_bytes()
    out = run(sync_lock.main, {"path": str(lock), "state": "absent", "token": took.result["token"]}, check_mode=True)
    assert not out.failed and out.result["changed"]
    assert lock.read_bytes() == before


def test_check_mode_breaks_no_stale_lock(run, lock):
    lock.write_text(json.dumps({"token": "0123456789abcdef", "host": "old", "since": 1.0, "purpose": "gone"}))
    before = lock.read_bytes()
    out = run(sync_lock.main, {"path": str(lock), "state": "stale", "stale_after": 60}, check_mode=True)
    assert not out.failed and out.result["changed"]
    assert out.result["replaced"]["purpose"] == "gone" and "token" not in out.result["replaced"]
    assert lock.read_bytes() == before


def test_an_unreadable_lock_file_is_named(run, lock):
    lock.write_text("not json")
    out = run(sync_lock.main, {"path": str(lock), "state": "stale"})
    assert out.failed and out.msg.startswith(f"{lock}: not a gbrowse_aws lock file")
    assert lock.read_text() == "not json"
