"""The sync lock file is written by the collection's one atomic writer."""

from __future__ import annotations

import os

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _sync_lock as lock


def test_taking_and_releasing_leaves_only_the_lock(tmp_path) -> None:
    path = str(tmp_path / "sync.lock")
    me = lock.Owner(os.getpid(), lock.process_start(os.getpid()))
    taken = lock.acquire(path, owner=me, purpose="test")
    assert lock.read(path) == taken.state
    assert sorted(os.listdir(tmp_path)) == ["sync.lock", "sync.lock.guard"]  # no temporary file left
    with pytest.raises(lock.LockError, match="is held"):
        lock.acquire(path, owner=me)
    assert lock.release(path, taken.state.token)
    assert not os.path.exists(path)
