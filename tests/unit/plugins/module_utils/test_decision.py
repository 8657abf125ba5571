# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The load-table decision and the fleet plan, table-driven."""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    Band,
    LoadRow,
    Plan,
    Slave,
    SlaveState,
    counts,
    matching_row,
    plan,
    stabilized,
    wanted,
)

# The table shipped with GBrowse (and shown in the seed document).
SEED = (
    LoadRow(0.1, 0, 1),
    LoadRow(0.5, 0, 2),
    LoadRow(1.0, 1, 3),
    LoadRow(2.0, 2, 4),
    LoadRow(5.0, 3, 6),
    LoadRow(6.0, 4, 6),
    LoadRow(7.0, 5, 7),
    LoadRow(10.0, 6, 8),
    LoadRow(15.0, 8, 8),
)


@pytest.mark.parametrize(
    "load, expected",
    [
        (0.0, Band(0, 0)),  # below the first row: no slaves
        (0.0999, Band(0, 0)),
        (0.1, Band(0, 1)),  # a threshold is inclusive
        (0.49, Band(0, 1)),
        (0.5, Band(0, 2)),
        (1.0, Band(1, 3)),
        (1.99, Band(1, 3)),
        (2.0, Band(2, 4)),
        (9.99, Band(5, 7)),
        (15.0, Band(8, 8)),
        (15.01, Band(8, 8)),  # above the last row: the last row
        (1e9, Band(8, 8)),
    ],
)
def test_wanted_seed_table(load: float, expected: Band) -> None:
    assert wanted(load, SEED) == expected


def test_wanted_order_independent() -> None:
    shuffled = tuple(reversed(SEED))
    for load in (0, 0.3, 1.5, 6.5, 100):
        assert wanted(load, shuffled) == wanted(load, SEED)


def test_wanted_empty_table_wants_nothing() -> None:
    assert wanted(100.0, ()) == Band(0, 0)


def test_wanted_first_threshold_zero_applies_at_zero_load() -> None:
    assert wanted(0.0, (LoadRow(0.0, 1, 2), LoadRow(3.0, 2, 5))) == Band(1, 2)


@pytest.mark.parametrize("load, threshold", [(0.05, None), (0.7, 0.5), (20.0, 15.0)])
def test_matching_row(load: float, threshold: float | None) -> None:
    row = matching_row(load, SEED)
    assert (row.threshold if row else None) == threshold


def S(sid: str, state: str, launched: float = 0.0) -> Slave:
    return Slave(sid, SlaveState(state), launched)


@pytest.mark.parametrize(
    "band, fleet, max_launch, launch, remove",
    [
        # empty fleet, nothing wanted
        (Band(0, 0), [], None, 0, ()),
        # below min: launch the difference
        (Band(2, 4), [], None, 2, ()),
        (Band(2, 4), [S("a", "ready")], None, 1, ()),
        # pending and booting count as current (no double launches while they boot)
        (Band(2, 4), [S("a", "pending"), S("b", "booting")], None, 0, ()),
        # going-away slaves do not count: they are replaced
        (Band(2, 4), [S("a", "ready"), S("b", "going")], None, 1, ()),
        (Band(1, 1), [S("a", "going"), S("b", "going")], None, 1, ()),
        # inside the band: hysteresis, nothing to do
        (Band(1, 3), [S("a", "ready"), S("b", "ready"), S("c", "booting")], None, 0, ()),
        (Band(0, 2), [S("a", "ready")], None, 0, ()),
        # above max: pending first, then booting, then ready newest first
        (Band(0, 1), [S("r1", "ready", 10), S("p", "pending", 1), S("b", "booting", 5)], None, 0, ("p", "b")),
        (Band(0, 0), [S("r1", "ready", 10), S("r2", "ready", 30), S("r3", "ready", 20)], None, 0, ("r2", "r3", "r1")),
        (Band(1, 1), [S("r1", "ready", 10), S("r2", "ready", 30), S("r3", "ready", 20)], None, 0, ("r2", "r3")),
        (Band(2, 2), [S("old", "ready", 1), S("new", "booting", 99), S("g", "going", 50)], None, 0, ()),
        (Band(0, 1), [S("b1", "booting", 5), S("b2", "booting", 7), S("r", "ready", 1)], None, 0, ("b2", "b1")),
        # equal launch times: ties broken by id so the plan is deterministic
        (Band(0, 1), [S("x", "ready", 5), S("y", "ready", 5)], None, 0, ("x",)),
        # a per-poll launch limit caps launches, never removals
        (Band(8, 8), [], 3, 3, ()),
        (Band(8, 8), [S("a", "ready")], 10, 7, ()),
        (Band(8, 8), [], 0, 0, ()),
        (Band(0, 0), [S("a", "ready"), S("b", "ready")], 1, 0, ("a", "b")),
    ],
)
def test_plan(band: Band, fleet: list[Slave], max_launch: int | None, launch: int, remove: tuple[str, ...]) -> None:
    result = plan(band, fleet, max_launch)
    assert result.launch == launch
    assert result.remove == remove
    assert result.current == sum(1 for s in fleet if s.state is not SlaveState.GOING)
    assert result.idle == (not launch and not remove)


@pytest.mark.parametrize("band, max_launch", [(Band(3, 2), None), (Band(-1, 2), None), (Band(0, 1), -1)])
def test_plan_rejects_invalid_input(band: Band, max_launch: int | None) -> None:
    with pytest.raises(ValueError):
        plan(band, [], max_launch)


def test_plan_never_removes_going_slaves() -> None:
    fleet = [S("g1", "going", 100), S("g2", "going", 200), S("r", "ready", 1)]
    assert plan(Band(0, 0), fleet).remove == ("r",)


def test_counts_lists_every_state() -> None:
    assert counts([S("a", "ready"), S("b", "ready"), S("c", "pending")]) == {
        "pending": 1,
        "booting": 0,
        "ready": 2,
        "going": 0,
    }


@pytest.mark.parametrize(
    "band, history, now, window, expected",
    [
        # off by default: the original's behaviour
        (Band(0, 1), [(90.0, Band(5, 7))], 100.0, 0, Band(0, 1)),
        # a recent higher min holds the floor; max rises with it
        (Band(0, 1), [(90.0, Band(5, 7))], 100.0, 60, Band(5, 5)),
        (Band(1, 3), [(50.0, Band(2, 4)), (95.0, Band(1, 3))], 100.0, 60, Band(2, 3)),
        # older than the window: forgotten
        (Band(0, 1), [(30.0, Band(5, 7))], 100.0, 60, Band(0, 1)),
        # exactly at the window edge: still counts
        (Band(0, 1), [(40.0, Band(3, 4))], 100.0, 60, Band(3, 3)),
        # scale-out is never delayed
        (Band(6, 8), [(90.0, Band(1, 3))], 100.0, 60, Band(6, 8)),
        # entries from the future (clock step) are ignored
        (Band(0, 1), [(130.0, Band(5, 7))], 100.0, 60, Band(0, 1)),
    ],
)
def test_stabilized(band: Band, history: list[tuple[float, Band]], now: float, window: float, expected: Band) -> None:
    assert stabilized(band, history, now, window) == expected


def test_plan_is_a_value() -> None:
    assert plan(Band(1, 2), []) == Plan(band=Band(1, 2), current=0, launch=1)
