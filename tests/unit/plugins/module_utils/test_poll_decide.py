# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One poll's actions from a frozen fleet snapshot: the rule the daemon, spot_fleet and the simulator share."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    Band,
    FleetSnapshot,
    PollSettings,
    Slave,
    SlaveState,
    alive,
    counted,
    decide,
)

P, B, R, G = SlaveState.PENDING, SlaveState.BOOTING, SlaveState.READY, SlaveState.GOING


def snapshot(*slaves: tuple[str, SlaveState, float], expired: tuple[str, ...] = ()) -> FleetSnapshot:
    """Slaves as (id, state, launched); every described one is at 10.0.0.N (N from its id)."""
    return FleetSnapshot(
        slaves=tuple(Slave(i, s, at) for i, s, at in slaves),
        addresses={i: f"10.0.0.{i[2:]}" for i, dummy, dummy2 in slaves},
        expired=expired,
    )


NO_DRAIN = PollSettings(ports=(8101,))
DRAIN = PollSettings(ports=(8101,), drain_time=60)


@pytest.mark.parametrize(
    "fleet, band, settings, now, draining, want",
    [
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", B, 3)),
            Band(2, 2), NO_DRAIN, 100, {},
            dict(terminate=("i-3",), drain=(), launch=0, renderers=("http://10.0.0.1:8101", "http://10.0.0.2:8101")),
            id="scale-in takes the booting slave first, nothing drains without drain_time",
        ),
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", R, 2)),
            Band(1, 1), DRAIN, 100, {},
            dict(terminate=(), drain=("i-2",), launch=0, renderers=("http://10.0.0.1:8101",), draining={"i-2": 100}),
            id="a ready slave scaled in drains: out of the farm now, not terminated",
        ),
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", R, 2)),
            Band(1, 1), DRAIN, 130, {"i-2": 100},
            dict(terminate=(), drain=(), launch=0, renderers=("http://10.0.0.1:8101",), draining={"i-2": 100}),
            id="a draining slave does not count and stays out of the farm until drain_time",
        ),
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", R, 2)),
            Band(1, 1), DRAIN, 160, {"i-2": 100},
            dict(terminate=("i-2",), drain=(), launch=0, renderers=("http://10.0.0.1:8101",), draining={}),
            id="drained after drain_time: terminated",
        ),
        pytest.param(
            snapshot(("i-1", R, 1)),
            Band(1, 1), DRAIN, 130, {"i-9": 100},
            dict(terminate=(), drain=(), launch=0, renderers=("http://10.0.0.1:8101",), draining={}),
            id="a draining slave no longer described is forgotten",
        ),
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", G, 2), expired=("i-2",)),
            Band(2, 3), NO_DRAIN, 100, {},
            dict(terminate=("i-2",), drain=(), launch=1, renderers=("http://10.0.0.1:8101",)),
            id="an expired slave is terminated and replaced in the same poll",
        ),
        pytest.param(
            snapshot(),
            Band(5, 6), dataclasses.replace(NO_DRAIN, max_launch=2), 100, {},
            dict(terminate=(), drain=(), launch=2, renderers=()),
            id="max_launch caps the launches of one poll",
        ),
        pytest.param(
            snapshot(("i-1", R, 1), ("i-2", B, 2)),
            Band(2, 2), PollSettings(ports=(8101, 8102)), 100, {},
            dict(terminate=(), drain=(), launch=0, renderers=("http://10.0.0.1:8101", "http://10.0.0.1:8102")),
            id="inside the band nothing happens; each ready slave is one renderer per port",
        ),
    ],
)
def test_decide(fleet, band, settings, now, draining, want) -> None:
    actions = decide(fleet, band, settings, now, draining)
    got = dict(terminate=actions.terminate, drain=actions.drain, launch=actions.launch, renderers=actions.renderers)
    if "draining" in want:
        got["draining"] = dict(actions.draining)
    assert got == want


def test_hold_keeps_the_fleet_and_the_drain_memory() -> None:
    fleet = snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", B, 3), expired=())
    actions = decide(fleet, Band(1, 1), DRAIN, 200, {"i-3": 100, "i-gone": 100})
    assert actions.terminate == ("i-3",) and actions.drain == ("i-2",)
    held = actions.hold()
    assert (held.terminate, held.drain, held.launch, held.plan.remove, held.expired) == ((), (), 0, (), ())
    assert dict(held.draining) == {"i-3": 100}  # pruned of what is gone, nothing started or ended
    assert held.renderers == actions.renderers


def test_counted_and_alive() -> None:
    fleet = snapshot(("i-1", R, 1), ("i-2", B, 2), ("i-3", G, 3))
    slaves = counted(fleet, {"i-1": 0})
    assert [s.state for s in slaves] == [G, B, G]
    assert alive(slaves) == 1 and alive(fleet.slaves) == 2


def test_snapshot_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot().slaves = ()  # type: ignore[misc]
