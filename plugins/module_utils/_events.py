# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What happened to each slave, and why: one event per slave that joined or left the render
farm, was launched, terminated, or vanished.

Pure: the reasons are read from two fleet snapshots (the look before and
this one), the poll's actions and what the balancer itself terminated. A
slave seen alive in the last look and gone (or shutting down) in this one,
which we did not terminate, was reclaimed or terminated behind our back: the
log used to say nothing about it. The daemon logs each event as one line,
keeps the recent ones for ``gbrowse_aws_balancer status`` and writes them to
the history (tests/unit/plugins/module_utils/test_events.py).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import Actions, FleetSnapshot

#: EC2 state reasons (StateReason.Code) that mean the spot market took the slave back.
SPOT_REASONS = ("Server.SpotInstanceTermination", "Server.SpotInstanceShutdown")

JOINED = "joined"  # the render farm
LEFT = "left"  # the render farm
LAUNCHED = "launched"
TERMINATED = "terminated"
VANISHED = "vanished"  # gone without our terminating it

_VERBS = {
    JOINED: "joined the render farm",
    LEFT: "left the render farm",
    LAUNCHED: "launched",
    TERMINATED: "terminated",
    VANISHED: "vanished",
}

#: Events a GBrowse admin should notice (logged as warnings).
UNEXPECTED_REASONS = ("stopped answering", "not ready", "vanished", "reclaimed", "interruption")


@dataclass(frozen=True)
class SlaveEvent:
    """One thing that happened to one slave."""

    id: str
    address: str | None
    what: str  # JOINED, LEFT, LAUNCHED, TERMINATED, VANISHED
    reason: str
    at: float = 0.0

    @property
    def unexpected(self) -> bool:
        return self.what == VANISHED or any(word in self.reason for word in UNEXPECTED_REASONS)

    def line(self) -> str:
        """The log line: ``Slave i-0abc at 10.0.3.17 left the render farm: scale-in``."""
        return f"Slave {self.id} at {self.address or '(no address yet)'} {_VERBS[self.what]}: {self.reason}"

    def as_dict(self) -> dict[str, t.Any]:
        return {"time": self.at, "id": self.id, "address": self.address, "event": self.what, "reason": self.reason}


def farm_ids(fleet: FleetSnapshot, renderers: t.Iterable[str]) -> dict[str, str | None]:
    """The slaves (id -> address) that ``renderers`` (``http://ADDRESS:PORT``) list."""
    listed = {url.split("//", 1)[-1].rsplit(":", 1)[0] for url in renderers}
    return {iid: address for iid, address in fleet.addresses.items() if address in listed}


def _gone_reason(fleet: FleetSnapshot, iid: str) -> str:
    """Why a slave we did not terminate is no longer alive: EC2's state reason when it still shows it."""
    instance = next((i for i in fleet.instances if i.id == iid), None)
    if instance is None:
        return "no longer described by EC2 (reclaimed, or terminated outside the balancer)"
    reason = getattr(instance, "state_reason", None)
    if reason in SPOT_REASONS:
        return f"reclaimed by EC2 (spot interruption, {reason}); now {instance.state}"
    detail = f" ({reason})" if reason else ""
    return f"{instance.state}{detail}, not by the balancer"


def _alive(fleet: FleetSnapshot) -> set[str]:
    return {i.id for i in fleet.instances if i.state in ("pending", "running")}


def farm_events(
    before: t.Mapping[str, str | None],
    after: t.Mapping[str, str | None],
    fleet: FleetSnapshot,
    actions: Actions | None,
    now: float,
    drain_time: float = 0.0,
    left_because: str | None = None,
) -> list[SlaveEvent]:
    """Slaves that joined or left the render farm (``before`` -> ``after``, id -> address), with why.

    ``actions`` is None between polls (a slave joined, or was found down) and at
    shutdown, when ``left_because`` says why every slave left.
    """
    events = []
    alive = _alive(fleet)
    for iid in sorted(set(after) - set(before)):
        reason = "answered the readiness check" if iid in fleet.gained else "ready"
        events.append(SlaveEvent(iid, after[iid], JOINED, reason, now))
    for iid in sorted(set(before) - set(after)):
        draining = f" (draining: terminated in {drain_time:.0f} s)" if actions is not None and iid in actions.drain else ""
        if left_because is not None:
            reason = left_because
        elif actions is not None and iid in actions.refresh:
            reason = f"old data: replaced by a slave with the new data{draining}"
        elif actions is not None and iid in actions.interrupted:
            reason = f"spot interruption warning from EC2{draining}"
        elif actions is not None and iid in actions.retired:
            reason = f"rebalance recommendation from EC2: its replacement is ready{draining}"
        elif draining:
            reason = f"scale-in{draining}"
        elif actions is not None and iid in actions.plan.remove:
            reason = "scale-in"
        elif iid not in alive:
            reason = _gone_reason(fleet, iid)
            reason = reason if reason.startswith("reclaimed") else f"vanished: {reason}"
        elif iid in fleet.lost:
            reason = "stopped answering"
        else:
            reason = "no longer ready"
        events.append(SlaveEvent(iid, before[iid], LEFT, reason, now))
    return events


def terminate_events(
    fleet: FleetSnapshot, actions: Actions, now: float, ready_timeout: float = 0.0
) -> list[SlaveEvent]:
    """A line for each slave the poll terminates: scale-in, not ready in time, or drained.

    ``ready_timeout`` in minutes, for the message.
    """
    events = []
    for iid in actions.terminate:
        if iid in actions.refresh:
            reason = "old data: replaced by a slave with the new data"
        elif iid in actions.interrupted:
            reason = "spot interruption warning from EC2"
        elif iid in actions.retired:
            reason = "rebalance recommendation from EC2: replaced"
        elif iid in actions.plan.remove:
            reason = f"scale-in (wanted {actions.plan.band.min}-{actions.plan.band.max}, {actions.plan.current} counted)"
        elif iid in actions.expired:
            reason = f"not ready within ready_timeout ({ready_timeout:g} min): replaced"
        else:
            reason = "drained (drain_time over)"
        events.append(SlaveEvent(iid, fleet.addresses.get(iid), TERMINATED, reason, now))
    return events


def vanished_events(
    previous: FleetSnapshot | None,
    fleet: FleetSnapshot,
    ours: t.Collection[str],
    reported: t.Collection[str] = (),
    now: float = 0.0,
) -> list[SlaveEvent]:
    """Slaves alive in the ``previous`` look that are gone or going in this one, not terminated by us.

    ``ours``: what the balancer terminated (it knows why); ``reported``: slaves
    whose leaving the farm already said so (one line per slave, not two).
    """
    if previous is None:
        return []
    gone = _alive(previous) - _alive(fleet) - set(ours) - set(reported)
    return [
        SlaveEvent(iid, previous.addresses.get(iid), VANISHED, _gone_reason(fleet, iid), now) for iid in sorted(gone)
    ]


def launch_events(instance_ids: t.Iterable[str], actions: Actions, now: float) -> list[SlaveEvent]:
    """A line for each slave launched: the band that wanted it (the address comes with the next look)."""
    plan = actions.plan
    reason = f"wanted {plan.band.min}-{plan.band.max}, {plan.current} counted"
    if actions.replacing:
        reason += f" (replacing {actions.replacing} warned by EC2: spot interruption or rebalance recommendation)"
    elif actions.refresh_launch:
        reason = f"new data: replacing {len(actions.stale)} slave(s) with old data"
    elif actions.expired:
        reason += f" (replacing {len(actions.expired)} that never answered)"
    return [SlaveEvent(iid, None, LAUNCHED, reason, now) for iid in instance_ids]
