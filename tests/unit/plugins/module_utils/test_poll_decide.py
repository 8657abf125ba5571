# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One poll's actions from a frozen fleet snapshot: the rule the daemon, spot_fleet and the simulator share."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    Band,
    FleetSnapshot,
    Market,
    PollSettings,
    Slave,
    SlaveState,
    affordable,
    alive,
    counted,
    decide,
    spot_price,
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


# --------------------------------------------------------------------------
# fresh data: slaves of an older data generation are replaced

NEW, OLD = "gen-new", "gen-old"


def gen_snapshot(*slaves: tuple[str, SlaveState, float, str | None]) -> FleetSnapshot:
    """Slaves as (id, state, launched, generation); every one at 10.0.0.N."""
    return FleetSnapshot(
        slaves=tuple(Slave(i, s, at, g) for i, s, at, g in slaves),
        addresses={i: f"10.0.0.{i[2:]}" for i, *dummy in slaves},
    )


REFRESH = PollSettings(ports=(8101,), generation=NEW)


@pytest.mark.parametrize(
    "fleet, band, settings, want",
    [
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 3), PollSettings(ports=(8101,)),
            dict(stale=(), refresh=(), terminate=(), launch=0),
            id="no generation in the settings (spot_fleet): no refresh",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 3), dataclasses.replace(REFRESH, refresh_batch=0),
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=0),
            id="refresh_batch 0: stale slaves are kept",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, NEW), ("i-2", R, 2, NEW)),
            Band(2, 3), REFRESH,
            dict(stale=(), refresh=(), terminate=(), launch=0),
            id="every slave fresh: nothing to do",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 3), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=1, refresh_launch=1),
            id="launch first: one fresh slave into the room under max, nothing retired yet",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", B, 3, NEW)),
            Band(2, 3), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=0),
            id="a fresh slave on its way: wait (bounded batch)",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", B, 3, NEW)),
            Band(2, 6), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=0),
            id="a fresh slave on its way: no second one though there is room (bounded batch)",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", P, 3, NEW)),
            Band(2, 6), dataclasses.replace(REFRESH, refresh_batch=2),
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=0),
            id="a pending fresh slave also holds the next step, whatever the batch",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, NEW)),
            Band(2, 3), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=("i-1",), terminate=("i-1",), launch=0,
                 renderers=("http://10.0.0.2:8101", "http://10.0.0.3:8101")),
            id="a fresh slave is ready: the oldest stale one goes, 2 ready left = min",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, NEW)),
            Band(2, 3), REFRESH,
            dict(stale=("i-1",), refresh=(), terminate=(), launch=1),
            id="never below min: with 2 ready and min 2 the stale one stays, a fresh one is launched",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 2), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=1),
            id="a fixed-size farm (min == max) gets room for one batch above max",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, NEW)),
            Band(2, 2), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=("i-1",), terminate=("i-1",), launch=0),
            id="... where the fresh slave above max is kept, and a stale one goes once it is ready",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(1, 2), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=("i-1",), terminate=("i-1",), launch=0),
            id="at max with a ready slave to spare above min: the oldest stale goes first (no room to launch)",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 3), dataclasses.replace(REFRESH, refresh_batch=5),
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=1),
            id="band max respected: a batch of 5 launches 1 into the room under max 3",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 6), dataclasses.replace(REFRESH, refresh_batch=5),
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=2),
            id="at most one fresh slave per stale one",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, OLD)),
            Band(2, 6), dataclasses.replace(REFRESH, refresh_batch=2),
            dict(stale=("i-1", "i-2", "i-3"), refresh=(), terminate=(), launch=2),
            id="bounded batch: 2 of 3 at a time",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, OLD), ("i-4", R, 4, NEW), ("i-5", R, 5, NEW)),
            Band(2, 6), dataclasses.replace(REFRESH, refresh_batch=2),
            dict(stale=("i-1", "i-2", "i-3"), refresh=("i-1", "i-2"), terminate=("i-1", "i-2"), launch=0),
            id="bounded batch: 2 retired at a time, the oldest",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, NEW)),
            Band(2, 3), dataclasses.replace(REFRESH, refresh_batch=3),
            dict(stale=("i-1", "i-2"), refresh=("i-1",), terminate=("i-1",), launch=0),
            id="never below min whatever the batch: 3 ready, min 2, one goes",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, NEW), ("i-3", R, 3, NEW)),
            Band(1, 1), REFRESH,
            dict(stale=("i-1",), refresh=(), terminate=("i-1",), launch=0),
            id="scale-in takes the stale slave first, though it is the oldest",
        ),
        pytest.param(
            gen_snapshot(("i-1", B, 1, OLD), ("i-2", B, 2, NEW), ("i-3", R, 3, NEW)),
            Band(1, 1), REFRESH,
            dict(stale=("i-1",), refresh=(), terminate=("i-1",), launch=0),
            id="scale-in still takes booting before ready: stale first among the booting (room kept for the refresh)",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(0, 0), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=("i-2", "i-1"), launch=0),
            id="no slave wanted: the stale ones go, none is launched to replace them",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(3, 4), REFRESH,
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=1, refresh_launch=0),
            id="below min the plan launches (fresh); nothing stale goes in that poll",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, None)),
            Band(1, 2), REFRESH,
            dict(stale=("i-1",), refresh=(), terminate=(), launch=1),
            id="an untagged slave (an older balancer's) is stale",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, NEW), ("i-2", R, 2, NEW), ("i-3", B, 3, OLD)),
            Band(2, 3), REFRESH,
            dict(stale=("i-3",), refresh=("i-3",), terminate=("i-3",), launch=0),
            id="a stale slave not ready yet goes at once: it serves nothing",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD)),
            Band(2, 6), dataclasses.replace(REFRESH, refresh_batch=3, max_launch=1),
            dict(stale=("i-1", "i-2"), refresh=(), terminate=(), launch=1),
            id="max_launch_per_poll caps the refresh's launches too",
        ),
        pytest.param(
            gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, NEW)),
            Band(2, 3), dataclasses.replace(REFRESH, drain_time=60),
            dict(stale=("i-1", "i-2"), refresh=("i-1",), terminate=(), drain=("i-1",), launch=0,
                 renderers=("http://10.0.0.2:8101", "http://10.0.0.3:8101")),
            id="a retired stale slave drains like any ready slave",
        ),
    ],
)
def test_refresh(fleet, band, settings, want) -> None:
    actions = decide(fleet, band, settings, 100, {})
    got = dict(stale=actions.stale, refresh=actions.refresh, terminate=actions.terminate, launch=actions.launch)
    for optional in ("drain", "renderers", "refresh_launch"):
        if optional in want:
            got[optional] = getattr(actions, optional)
    assert got == want


def test_hold_drops_the_refresh_step() -> None:
    fleet = gen_snapshot(("i-1", R, 1, OLD), ("i-2", R, 2, OLD), ("i-3", R, 3, NEW))
    actions = decide(fleet, Band(2, 3), REFRESH, 100, {})
    assert actions.refresh == ("i-1",)
    held = actions.hold()
    assert (held.refresh, held.refresh_launch, held.terminate, held.launch) == ((), 0, (), 0)
    assert held.stale == ("i-1", "i-2")


@pytest.mark.parametrize(
    "band, size, batch, drain_time",
    [
        (Band(2, 3), 2, 1, 0),
        (Band(2, 2), 2, 1, 0),
        (Band(2, 2), 2, 2, 60),
        (Band(1, 2), 2, 1, 0),
        (Band(2, 6), 5, 2, 0),
        (Band(3, 4), 4, 1, 60),
        (Band(0, 2), 1, 1, 0),
        (Band(4, 8), 8, 3, 0),
    ],
)
def test_a_refresh_converges_poll_by_poll(band, size, batch, drain_time) -> None:
    """Poll after poll (a slave is pending one poll, booting the next, then ready; a drained one goes
    after drain_time): every slave ends fresh, in the band, and on the way the farm never lists fewer
    than min slaves, never more than a batch of fresh slaves boot at once, and max holds (but for a
    fixed-size band's one batch)."""
    settings = PollSettings(ports=(8101,), generation=NEW, refresh_batch=batch, drain_time=drain_time)
    fleet = {f"i-{n}": (R, float(n), OLD) for n in range(1, size + 1)}
    ids = itertools.count(100)
    draining: dict[str, float] = {}
    ceiling = band.max + (min(batch, size) if band.min == band.max else 0)
    now, polls = 0.0, 0
    while any(g != NEW for dummy, dummy2, g in fleet.values()) or draining:
        polls += 1
        assert polls < 60, fleet
        snap = gen_snapshot(*((i, s, at, g) for i, (s, at, g) in sorted(fleet.items())))
        actions = decide(snap, band, settings, now, draining)
        assert len(actions.renderers) >= band.min, (polls, fleet, actions)
        draining = dict(actions.draining)
        for iid in actions.terminate:
            del fleet[iid]
        for dummy in range(actions.launch):
            fleet[f"i-{next(ids)}"] = (P, now, NEW)
        counting = {i: v for i, v in fleet.items() if i not in draining}
        assert len(counting) <= ceiling, (polls, fleet)
        assert sum(1 for s, dummy, g in counting.values() if g == NEW and s is not R) <= batch, (polls, fleet)
        now += 30
        fleet = {i: ({P: B, B: R}.get(s, s), at, g) for i, (s, at, g) in fleet.items()}
    assert band.min <= len(fleet) <= band.max
    assert {g for dummy, dummy2, g in fleet.values()} == {NEW}


# --------------------------------------------------------------------------
# max_hourly_spend, the on-demand fallback and the way back to spot


def market_snapshot(*slaves: tuple[str, SlaveState, float], on_demand: tuple[str, ...] = ()) -> FleetSnapshot:
    return dataclasses.replace(snapshot(*slaves), on_demand=frozenset(on_demand))


CAP = PollSettings(ports=(8101,), max_hourly_spend=1.0, spot_bid=0.30)
FALLBACK = PollSettings(ports=(8101,), spot_bid=0.30, on_demand_fallback=3, on_demand_price=0.40)
BOTH = dataclasses.replace(FALLBACK, max_hourly_spend=1.0)


@pytest.mark.parametrize(
    "fleet, band, settings, market, want",
    [
        pytest.param(
            market_snapshot(), Band(10, 10), CAP, Market(spot_price=0.25),
            dict(launch=4, capped=6, lifecycle="spot", terminate=(), spend=1.0),
            id="the cap holds: 4 x 0.25 = 1.00 USD/hour, 6 launches withheld",
        ),
        pytest.param(
            market_snapshot(), Band(10, 10), CAP, Market(spot_price=None),
            dict(launch=3, capped=7, lifecycle="spot", terminate=(), spend=0.9),
            id="no current price: each slave counts at spot_bid",
        ),
        pytest.param(
            market_snapshot(), Band(10, 10), CAP, Market(spot_price=0.90),
            dict(launch=3, capped=7, lifecycle="spot", terminate=(), spend=0.9),
            id="a price above the bid counts at the bid: EC2 charges no more",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", B, 3)), Band(5, 6), CAP, Market(spot_price=0.25),
            dict(launch=1, capped=1, lifecycle="spot", terminate=(), spend=1.0),
            id="the slaves already billed count: 3 + 1 launched = 1.00",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", R, 3), ("i-4", R, 4), ("i-5", R, 5)),
            Band(6, 6), CAP, Market(spot_price=0.25),
            dict(launch=0, capped=1, lifecycle="spot", terminate=(), spend=1.25),
            id="a fleet already above the cap (the price rose) stops growing and is not cut",
        ),
        pytest.param(
            market_snapshot(), Band(2, 2), CAP, Market(spot_price=0.25),
            dict(launch=2, capped=0, lifecycle="spot", terminate=(), spend=0.5),
            id="below the cap nothing is withheld",
        ),
        pytest.param(
            market_snapshot(), Band(2, 2), NO_DRAIN, Market(spot_price=5.0, spot_failures=9),
            dict(launch=2, capped=0, lifecycle="spot", terminate=(), spend=None),
            id="no cap and no fallback: the market changes nothing",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1)), Band(3, 3), FALLBACK, Market(spot_failures=2),
            dict(launch=2, capped=0, lifecycle="spot", terminate=(), spend=None),
            id="fewer failed polls than on_demand_fallback: spot again",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1)), Band(3, 3), FALLBACK, Market(spot_failures=3),
            dict(launch=2, capped=0, lifecycle="on-demand", terminate=(), spend=None),
            id="on_demand_fallback failed polls and the min unmet: on-demand",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1)), Band(5, 5), BOTH, Market(spot_price=0.20, spot_failures=3),
            dict(launch=2, capped=2, lifecycle="on-demand", terminate=(), spend=1.0),
            id="on-demand within the cap at on_demand_price: 0.20 + 2 x 0.40 = 1.00",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), on_demand=("i-1", "i-2")), Band(3, 3), BOTH,
            Market(spot_price=0.05, spot_failures=5),
            dict(launch=3, capped=0, lifecycle="spot", terminate=(), spend=0.95),
            id="no on-demand slave fits under the cap (0.80 + 0.40 > 1.00): spot is tried instead",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2)), Band(1, 3), FALLBACK, Market(spot_failures=7),
            dict(launch=0, capped=0, lifecycle="spot", terminate=(), spend=None),
            id="the min met: no on-demand whatever the failures",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), on_demand=("i-1", "i-2")), Band(2, 3), FALLBACK,
            Market(spot_failures=4),
            dict(launch=2, capped=0, lifecycle="spot", terminate=(), spend=None),
            id="on-demand slaves hold the min: spot ones are tried in their place, none terminated",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", B, 3), ("i-4", P, 4), on_demand=("i-1", "i-2")),
            Band(2, 3), FALLBACK, Market(),
            dict(launch=0, capped=0, lifecycle="spot", terminate=(), spend=None),
            id="spot replacements on their way: the on-demand ones stay until they are ready",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", R, 3), ("i-4", B, 4), on_demand=("i-1", "i-2")),
            Band(2, 3), FALLBACK, Market(),
            dict(launch=0, capped=0, lifecycle="spot", terminate=("i-2",), spend=None),
            id="one spot replacement ready: one on-demand slave goes (the newest), the min still held",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", R, 3), ("i-4", R, 4), on_demand=("i-1", "i-2")),
            Band(2, 3), FALLBACK, Market(),
            dict(launch=0, capped=0, lifecycle="spot", terminate=("i-2", "i-1"), spend=None),
            id="all spot replacements ready: every on-demand slave goes",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), on_demand=("i-1", "i-2")), Band(0, 0), FALLBACK, Market(),
            dict(launch=0, capped=0, lifecycle="spot", terminate=("i-2", "i-1"), spend=None),
            id="scale-in to nothing: on-demand slaves go like any other",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), on_demand=("i-1", "i-2")), Band(2, 2), BOTH,
            Market(spot_price=0.20),
            dict(launch=1, capped=1, lifecycle="spot", terminate=(), spend=1.0),
            id="replacements need room under the cap: 2 x 0.40 + 0.20 = 1.00, one at a time",
        ),
        pytest.param(
            market_snapshot(("i-1", R, 1), ("i-2", R, 2), on_demand=("i-1", "i-2")), Band(2, 2), BOTH,
            Market(spot_price=0.10),
            dict(launch=2, capped=0, lifecycle="spot", terminate=(), spend=1.0),
            id="cheap spot fits under the cap beside the on-demand slaves it replaces",
        ),
    ],
)
def test_decide_spend_cap_and_on_demand_fallback(fleet, band, settings, market, want) -> None:
    actions = decide(fleet, band, settings, 100, {}, market)
    got = dict(
        launch=actions.launch,
        capped=actions.capped,
        lifecycle=actions.lifecycle,
        terminate=actions.terminate,
        spend=None if actions.spend is None else round(actions.spend, 6),
    )
    assert got == want
    assert actions.plan.current == alive(actions.slaves)  # the report counts the whole fleet


@pytest.mark.parametrize(
    "cap, spend, price, want",
    [(1.0, 0.0, 0.25, 4), (1.0, 0.0, 0.1, 10), (0.3, 0.0, 0.1, 3), (1.0, 1.2, 0.1, 0), (1.0, 0.95, 0.1, 0)],
)
def test_affordable_is_exact_at_the_edge_and_never_negative(cap, spend, price, want) -> None:
    assert affordable(cap, spend, price) == want


def test_spot_price_is_the_current_one_capped_by_the_bid() -> None:
    assert spot_price(CAP, Market(spot_price=0.12)) == 0.12
    assert spot_price(CAP, Market(spot_price=None)) == 0.30
    assert spot_price(CAP, Market(spot_price=0.50)) == 0.30
    assert spot_price(PollSettings(), Market()) is None


def test_the_cap_holds_a_refresh_too() -> None:
    """A fixed farm of 2 with old data may grow by a batch to refresh, but not past max_hourly_spend."""
    fleet = FleetSnapshot(
        slaves=(Slave("i-1", R, 1, generation="old"), Slave("i-2", R, 2, generation="old")),
        addresses={"i-1": "10.0.0.1", "i-2": "10.0.0.2"},
    )
    settings = PollSettings(ports=(8101,), generation="new", refresh_batch=1, spot_bid=0.3)
    free = decide(fleet, Band(2, 2), settings, 100)
    assert (free.launch, free.refresh_launch) == (1, 1)
    tight = decide(fleet, Band(2, 2), dataclasses.replace(settings, max_hourly_spend=0.6), 100, {}, Market())
    assert (tight.launch, tight.refresh_launch, tight.capped, tight.terminate) == (0, 0, 1, ())
    roomy = decide(fleet, Band(2, 2), dataclasses.replace(settings, max_hourly_spend=0.9), 100, {}, Market())
    assert (roomy.launch, roomy.refresh_launch, roomy.capped) == (1, 1, 0)


# --------------------------------------------------------------------------
# the interruption queue's notices: fleet.interrupted (spot interruption
# warning) and fleet.at_risk (rebalance recommendation), id -> notice time


def warned(fleet: FleetSnapshot, interrupted: dict | None = None, at_risk: dict | None = None) -> FleetSnapshot:
    return dataclasses.replace(fleet, interrupted=interrupted or {}, at_risk=at_risk or {})


F1 = "http://10.0.0.1:8101"
F2 = "http://10.0.0.2:8101"
F3 = "http://10.0.0.3:8101"


@pytest.mark.parametrize(
    "fleet, band, settings, draining, want",
    [
        pytest.param(
            warned(snapshot(("i-1", R, 1)), interrupted={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=(), drain=("i-1",), launch=1, renderers=(), interrupted=("i-1",), retired=(), replacing=1),
            id="interruption: out of the farm now (drains), replaced now",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1)), interrupted={"i-1": 50}),
            Band(1, 2), NO_DRAIN, {},
            dict(terminate=("i-1",), drain=(), launch=1, renderers=(), interrupted=("i-1",), retired=(), replacing=1),
            id="interruption without drain_time: terminated now, replaced now",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), interrupted={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=(), drain=("i-1",), launch=1, renderers=(F2,), interrupted=("i-1",), retired=(), replacing=1),
            id="interruption inside the band: replaced all the same (the fleet keeps its size)",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), interrupted={"i-1": 50}),
            Band(1, 1), DRAIN, {},
            dict(terminate=(), drain=("i-1",), launch=0, renderers=(F2,), interrupted=("i-1",), retired=(), replacing=0),
            id="interruption of a slave the band has no room for: not replaced",
        ),
        pytest.param(
            warned(snapshot(("i-1", B, 1)), interrupted={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=("i-1",), drain=(), launch=1, renderers=(), interrupted=("i-1",), retired=(), replacing=1),
            id="interruption of a booting slave: terminated now (it never served), replaced",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-5", P, 60)), interrupted={"i-1": 50}),
            Band(1, 2), DRAIN, {"i-1": 55},
            dict(terminate=(), drain=(), launch=0, renderers=(), interrupted=(), retired=(), replacing=0),
            id="the next poll: draining, its replacement (launched after the warning) pending: nothing more",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-5", P, 40)), interrupted={"i-1": 50}),
            Band(1, 2), DRAIN, {"i-1": 55},
            dict(terminate=(), drain=(), launch=1, renderers=(), interrupted=(), retired=(), replacing=1),
            id="a slave launched before the warning is no replacement (the first launch failed): launch again",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), interrupted={"i-1": 50, "i-2": 50}),
            Band(2, 4), dataclasses.replace(DRAIN, max_launch=1), {},
            dict(terminate=(), drain=("i-1", "i-2"), launch=1, renderers=(), interrupted=("i-1", "i-2"), retired=(),
                 replacing=1),
            id="max_launch caps the replacements too",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1)), at_risk={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=(), drain=(), launch=1, renderers=(F1,), interrupted=(), retired=(), replacing=1),
            id="rebalance: a replacement is launched, the slave at risk keeps serving",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-5", B, 60)), at_risk={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=(), drain=(), launch=0, renderers=(F1,), interrupted=(), retired=(), replacing=0),
            id="rebalance: its replacement boots: it keeps serving, nothing launched",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-5", R, 60)), at_risk={"i-1": 50}),
            Band(1, 2), DRAIN, {},
            dict(terminate=(), drain=("i-1",), launch=0, renderers=("http://10.0.0.5:8101",), interrupted=(),
                 retired=("i-1",), replacing=0),
            id="rebalance: its replacement is ready: retired (drains)",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), at_risk={"i-1": 50}),
            Band(1, 2), NO_DRAIN, {},
            dict(terminate=(), drain=(), launch=1, renderers=(F1, F2), interrupted=(), retired=(), replacing=1),
            id="rebalance inside the band: replaced first (the fleet surges above max meanwhile)",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), at_risk={"i-1": 50}),
            Band(1, 1), NO_DRAIN, {},
            dict(terminate=("i-1",), drain=(), launch=0, renderers=(F2,), interrupted=(), retired=("i-1",), replacing=0),
            id="rebalance without room for a replacement: retired at once",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2)), at_risk={"i-1": 50}, interrupted={"i-1": 50}),
            Band(1, 2), NO_DRAIN, {},
            dict(terminate=("i-1",), drain=(), launch=1, renderers=(F2,), interrupted=("i-1",), retired=(), replacing=1),
            id="at risk, then interrupted: the interruption wins",
        ),
        pytest.param(
            warned(snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", R, 3)), interrupted={"i-9": 50}, at_risk={"i-8": 50}),
            Band(1, 3), NO_DRAIN, {},
            dict(terminate=(), drain=(), launch=0, renderers=(F1, F2, F3), interrupted=(), retired=(), replacing=0),
            id="notices about instances not in the fleet change nothing",
        ),
        pytest.param(
            warned(snapshot(("i-1", G, 1), ("i-2", R, 2)), interrupted={"i-1": 50}),
            Band(1, 2), NO_DRAIN, {},
            dict(terminate=(), drain=(), launch=0, renderers=(F2,), interrupted=(), retired=(), replacing=0),
            id="an interrupted slave already shutting down is not replaced again",
        ),
    ],
)
def test_decide_with_notices(fleet, band, settings, draining, want) -> None:
    actions = decide(fleet, band, settings, 100, draining)
    got = dict(
        terminate=actions.terminate,
        drain=actions.drain,
        launch=actions.launch,
        renderers=actions.renderers,
        interrupted=actions.interrupted,
        retired=actions.retired,
        replacing=actions.replacing,
    )
    assert got == want
    assert actions.plan.launch == actions.launch


def test_rebalance_poll_by_poll_ends_with_the_same_count_and_the_old_slave_gone() -> None:
    """Launch before terminate: the slave at risk serves until its replacement does."""
    band, now = Band(1, 2), 100.0
    fleet = warned(snapshot(("i-1", R, 1)), at_risk={"i-1": 50})
    first = decide(fleet, band, DRAIN, now)
    assert (first.launch, first.renderers) == (1, (F1,))
    booting = warned(snapshot(("i-1", R, 1), ("i-5", B, 101)), at_risk={"i-1": 50})
    second = decide(booting, band, DRAIN, now + 30, first.draining)
    assert (second.launch, second.drain, second.renderers) == (0, (), (F1,))
    ready = warned(snapshot(("i-1", R, 1), ("i-5", R, 101)), at_risk={"i-1": 50})
    third = decide(ready, band, DRAIN, now + 60, second.draining)
    assert third.retired == ("i-1",) and third.renderers == ("http://10.0.0.5:8101",)
    later = decide(ready, band, DRAIN, now + 130, third.draining)
    assert later.terminate == ("i-1",) and later.launch == 0
    assert alive(later.slaves) == 1


def test_hold_starts_no_interruption_action() -> None:
    actions = decide(warned(snapshot(("i-1", R, 1)), interrupted={"i-1": 50}), Band(1, 2), DRAIN, 100)
    held = actions.hold()
    assert (held.interrupted, held.retired, held.replacing, held.launch, held.drain) == ((), (), 0, 0, ())
    assert held.renderers == ()  # still out of the farm: spot takes it whatever we publish


def test_notices_and_a_refresh_in_the_same_poll() -> None:
    """A warned slave is neither refreshed nor counted: one launch serves the min and the replacement."""
    fleet = warned(
        FleetSnapshot(
            slaves=(Slave("i-1", R, 1, OLD), Slave("i-2", R, 2, OLD)),
            addresses={"i-1": "10.0.0.1", "i-2": "10.0.0.2"},
        ),
        interrupted={"i-1": 50},
    )
    settings = dataclasses.replace(DRAIN, generation=NEW, refresh_batch=1)
    actions = decide(fleet, Band(2, 2), settings, 100)
    assert (actions.launch, actions.replacing, actions.interrupted, actions.drain) == (1, 1, ("i-1",), ("i-1",))
    assert actions.stale == ("i-2",) and actions.refresh == () and actions.renderers == (F2,)


def test_replacements_are_launches_like_any_other_for_the_spend_cap() -> None:
    """An interrupted slave is out of the farm at once whatever the cap; its replacement waits for room under it."""
    fleet = warned(snapshot(("i-1", R, 1), ("i-2", R, 2), ("i-3", R, 3)), interrupted={"i-1": 50})
    settings = dataclasses.replace(CAP, drain_time=60)  # 3 x 0.30 billed (i-1 drains): no room for a 4th
    actions = decide(fleet, Band(1, 3), settings, 100, {}, Market(spot_price=0.30))
    assert (actions.interrupted, actions.drain, actions.renderers) == (("i-1",), ("i-1",), (F2, F3))
    assert (actions.launch, actions.capped, actions.replacing) == (0, 1, 0)
    free = decide(fleet, Band(1, 3), dataclasses.replace(settings, drain_time=0), 100, {}, Market(spot_price=0.30))
    assert (free.terminate, free.launch, free.capped, free.replacing) == (("i-1",), 1, 0, 1)  # terminated: room
