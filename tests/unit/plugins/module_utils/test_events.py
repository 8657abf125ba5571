# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What happened to each slave, and why, from two snapshots and the poll's actions (pure)."""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _events as ev
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    Band,
    FleetSnapshot,
    PollSettings,
    Slave,
    SlaveState,
    decide,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import Instance

R, B = SlaveState.READY, SlaveState.BOOTING


def inst(iid: str, state: str = "running", reason: str | None = None) -> Instance:
    n = int(iid[-1])
    return Instance(iid, state, 1000.0 + n, f"10.0.0.{n}", None, "vpc-1", "subnet-1", "m5.large", "spot", state_reason=reason)


def snap(*slaves: tuple[str, SlaveState], instances: tuple[Instance, ...] | None = None, **kw) -> FleetSnapshot:
    instances = instances if instances is not None else tuple(inst(i) for i, dummy in slaves)
    return FleetSnapshot(
        slaves=tuple(Slave(i, s, 1000.0 + int(i[-1])) for i, s in slaves),
        addresses={i.id: i.private_ip for i in instances},
        instances=instances,
        **kw,
    )


SETTINGS = PollSettings(ports=(8101,), drain_time=0.0)


def farm(*ids: str) -> dict[str, str]:
    return {i: f"10.0.0.{i[-1]}" for i in ids}


def test_a_slave_that_answers_joins_and_the_line_names_it():
    fleet = snap(("i-1", R), gained=("i-1",))
    (event,) = ev.farm_events({}, farm("i-1"), fleet, None, 5.0)
    assert (event.what, event.reason, event.at) == (ev.JOINED, "answered the readiness check", 5.0)
    assert event.line() == "Slave i-1 at 10.0.0.1 joined the render farm: answered the readiness check"
    assert not event.unexpected


@pytest.mark.parametrize(
    "drain, expected",
    [(0.0, "scale-in"), (60.0, "scale-in (draining: terminated in 60 s)")],
)
def test_scale_in_leaves_the_farm_with_its_reason(drain, expected):
    fleet = snap(("i-1", R), ("i-2", R))
    actions = decide(fleet, Band(1, 1), PollSettings(ports=(8101,), drain_time=drain), 100.0)
    after = ev.farm_ids(fleet, actions.renderers)
    (event,) = ev.farm_events(farm("i-1", "i-2"), after, fleet, actions, 100.0, drain)
    assert (event.id, event.what, event.reason) == ("i-2", ev.LEFT, expected)


def test_a_slave_found_down_leaves_the_farm_as_stopped_answering():
    fleet = snap(("i-1", B), lost=("i-1",))
    (event,) = ev.farm_events(farm("i-1"), {}, fleet, None, 1.0)
    assert event.reason == "stopped answering" and event.unexpected


@pytest.mark.parametrize(
    "instances, expected",
    [
        ((), "vanished: no longer described by EC2 (reclaimed, or terminated outside the balancer)"),
        (
            (inst("i-1", "shutting-down", "Server.SpotInstanceTermination"),),
            "reclaimed by EC2 (spot interruption, Server.SpotInstanceTermination); now shutting-down",
        ),
        ((inst("i-1", "stopping", "Client.UserInitiatedShutdown"),), "vanished: stopping (Client.UserInitiatedShutdown), not by the balancer"),
    ],
)
def test_a_slave_that_vanished_from_the_farm_says_so(instances, expected):
    fleet = snap(*[(i.id, SlaveState.GOING) for i in instances], instances=instances)
    (event,) = ev.farm_events(farm("i-1"), {}, fleet, None, 1.0)
    assert (event.what, event.reason) == (ev.LEFT, expected) and event.unexpected


def test_shutdown_empties_the_farm_with_one_reason():
    fleet = snap(("i-1", R), ("i-2", R))
    events = ev.farm_events(farm("i-1", "i-2"), {}, fleet, None, 1.0, left_because="shutdown")
    assert [(e.id, e.reason) for e in events] == [("i-1", "shutdown"), ("i-2", "shutdown")]


def test_terminations_say_scale_in_not_ready_or_drained():
    fleet = snap(("i-1", R), ("i-2", B), ("i-3", R), ("i-4", R), expired=("i-2",))
    fleet = FleetSnapshot(
        slaves=tuple(s if s.id != "i-2" else Slave("i-2", SlaveState.GOING, 1000.0) for s in fleet.slaves),
        addresses=fleet.addresses,
        instances=fleet.instances,
        expired=("i-2",),
    )
    actions = decide(fleet, Band(1, 1), PollSettings(ports=(8101,), drain_time=30.0), 100.0, {"i-4": 50.0})
    reasons = {e.id: e.reason for e in ev.terminate_events(fleet, actions, 100.0, ready_timeout=5)}
    assert reasons == {
        "i-2": "not ready within ready_timeout (5 min): replaced",
        "i-4": "drained (drain_time over)",
    }
    # i-3 (newest ready) drains: it leaves the farm now and is terminated later
    assert actions.drain == ("i-3",)
    now = decide(fleet, Band(1, 1), SETTINGS, 100.0)
    reasons = {e.id: e.reason for e in ev.terminate_events(fleet, now, 100.0)}
    assert reasons["i-3"] == "scale-in (wanted 1-1, 3 counted)"


def test_vanished_is_what_was_alive_and_is_not_any_more_and_not_ours():
    before = snap(("i-1", R), ("i-2", B), ("i-3", R), ("i-4", R))
    after = snap(
        ("i-2", SlaveState.GOING), ("i-3", SlaveState.GOING),
        instances=(inst("i-2", "shutting-down", "Server.SpotInstanceTermination"), inst("i-3", "shutting-down")),
    )
    events = ev.vanished_events(before, after, ours={"i-3"}, reported={"i-4"}, now=7.0)
    assert [(e.id, e.address, e.what) for e in events] == [("i-1", "10.0.0.1", ev.VANISHED), ("i-2", "10.0.0.2", ev.VANISHED)]
    assert events[0].line() == (
        "Slave i-1 at 10.0.0.1 vanished: no longer described by EC2 (reclaimed, or terminated outside the balancer)"
    )
    assert events[1].reason.startswith("reclaimed by EC2 (spot interruption") and events[1].unexpected
    assert ev.vanished_events(None, after, ours=()) == []


def test_launches_name_the_band_that_wanted_them():
    fleet = snap(("i-1", R))
    actions = decide(fleet, Band(3, 4), SETTINGS, 0.0)
    events = ev.launch_events(["i-8", "i-9"], actions, 0.0)
    assert [e.line() for e in events] == [
        "Slave i-8 at (no address yet) launched: wanted 3-4, 1 counted",
        "Slave i-9 at (no address yet) launched: wanted 3-4, 1 counted",
    ]


def test_a_refresh_for_new_data_says_so_at_launch_at_leaving_and_at_termination():
    settings = PollSettings(ports=(8101,), drain_time=0.0, generation="new", refresh_batch=1)
    old = FleetSnapshot(
        slaves=(Slave("i-1", R, 1001.0, "old"), Slave("i-2", R, 1002.0, "old")),
        addresses=farm("i-1", "i-2"),
        instances=(inst("i-1"), inst("i-2")),
    )
    first = decide(old, Band(2, 3), settings, 0.0)
    assert first.refresh_launch == 1
    assert ev.launch_events(["i-3"], first, 0.0)[0].reason == "new data: replacing 2 slave(s) with old data"
    fresh = FleetSnapshot(
        slaves=(*old.slaves, Slave("i-3", R, 1003.0, "new")),
        addresses=farm("i-1", "i-2", "i-3"),
        instances=(inst("i-1"), inst("i-2"), inst("i-3")),
    )
    second = decide(fresh, Band(2, 3), settings, 30.0)
    assert second.refresh == ("i-1",)
    (left,) = ev.farm_events(farm("i-1", "i-2", "i-3"), ev.farm_ids(fresh, second.renderers), fresh, second, 30.0)
    assert (left.id, left.reason) == ("i-1", "old data: replaced by a slave with the new data")
    (gone,) = ev.terminate_events(fresh, second, 30.0)
    assert gone.line() == "Slave i-1 at 10.0.0.1 terminated: old data: replaced by a slave with the new data"


def test_warned_slaves_leave_and_go_with_ec2s_warning_as_the_reason():
    """The interruption queue's notices: the lines say which warning took the slave out."""
    fleet = snap(("i-1", R), ("i-2", R), ("i-3", R), interrupted={"i-1": 1005.0}, at_risk={"i-2": 900.0})
    fleet = FleetSnapshot(
        slaves=(Slave("i-1", R, 1001.0), Slave("i-2", R, 1002.0), Slave("i-3", R, 1003.0)),  # i-3 replaces i-2
        addresses=fleet.addresses,
        instances=fleet.instances,
        interrupted=fleet.interrupted,
        at_risk=fleet.at_risk,
    )
    actions = decide(fleet, Band(1, 3), SETTINGS, 1010.0)
    assert (actions.interrupted, actions.retired) == (("i-1",), ("i-2",))
    left = {e.id: e for e in ev.farm_events(farm("i-1", "i-2", "i-3"), farm("i-3"), fleet, actions, 1010.0)}
    assert left["i-1"].reason == "spot interruption warning from EC2" and left["i-1"].unexpected
    assert left["i-2"].reason == "rebalance recommendation from EC2: its replacement is ready"
    gone = {e.id: e.reason for e in ev.terminate_events(fleet, actions, 1010.0)}
    assert gone == {"i-1": "spot interruption warning from EC2", "i-2": "rebalance recommendation from EC2: replaced"}
    (launched,) = ev.launch_events(["i-9"], actions, 1010.0)
    assert "replacing 1 warned by EC2" in launched.reason
