# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The balancer's decision: load -> wanted band -> plan of launches and removals.

Everything here is pure: no clock, no network, no boto3. Time enters only as
numbers the caller passes in, so every function is table-testable.
"""

from __future__ import annotations

import dataclasses
import enum
import typing as t
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoadRow:
    """One row of ``[LOAD TABLE]``: at ``threshold`` req/s or more, run min..max slaves."""

    threshold: float
    min: int
    max: int
    line: int = 0  # line in aws_balancer.conf, 0 when not from a file


@dataclass(frozen=True)
class Band:
    """The wanted number of slaves: at least ``min``, at most ``max``."""

    min: int
    max: int


NO_SLAVES = Band(0, 0)


def wanted(load: float, table: t.Sequence[LoadRow]) -> Band:
    """The band for ``load``: the last row whose threshold is <= load.

    Below the first threshold no slaves are wanted; above the last, the last
    row holds. ``table`` may be in any order (the conf reader already insists
    on ascending thresholds, but the original sorted, so do we).
    """
    band = NO_SLAVES
    for row in sorted(table, key=lambda r: r.threshold):
        if load >= row.threshold:
            band = Band(row.min, row.max)
        else:
            break
    return band


def matching_row(load: float, table: t.Sequence[LoadRow]) -> LoadRow | None:
    """The row that decided :func:`wanted`, or None below the first threshold."""
    found = None
    for row in sorted(table, key=lambda r: r.threshold):
        if load >= row.threshold:
            found = row
        else:
            break
    return found


class SlaveState(str, enum.Enum):
    """Where a slave is in its life, as far as the plan cares."""

    PENDING = "pending"  # asked for, not yet running (EC2 'pending')
    BOOTING = "booting"  # running, not yet answering the readiness check
    READY = "ready"  # answered the readiness check: in the render farm
    GOING = "going"  # stopping, terminated, interrupted: does not count


#: Removal order: cheapest to give up first.
REMOVAL_ORDER = (SlaveState.PENDING, SlaveState.BOOTING, SlaveState.READY)


@dataclass(frozen=True)
class Slave:
    """A render slave as the plan sees it."""

    id: str
    state: SlaveState
    launched: float = 0.0  # launch time, seconds since the epoch


@dataclass(frozen=True)
class Plan:
    """What to do this poll: launch ``launch`` slaves, remove ``remove`` (ids, in order)."""

    band: Band
    current: int
    launch: int = 0
    remove: tuple[str, ...] = field(default_factory=tuple)

    @property
    def idle(self) -> bool:
        return not self.launch and not self.remove


def counts(fleet: t.Iterable[Slave]) -> dict[str, int]:
    """How many slaves are in each state (every state present, zero or more)."""
    result = {state.value: 0 for state in SlaveState}
    for slave in fleet:
        result[slave.state.value] += 1
    return result


def plan(band: Band, fleet: t.Sequence[Slave], max_launch: int | None = None) -> Plan:
    """Keep the fleet in ``band``.

    Slaves that are going away do not count. Below ``band.min`` launch the
    difference (at most ``max_launch`` in one poll when given); above
    ``band.max`` remove the difference: pending before booting before ready,
    and among each, the newest first (the oldest have proven themselves, and
    the newest are the least likely to be serving a request). Inside the band
    do nothing: that band is the hysteresis.
    """
    if band.min < 0 or band.max < band.min:
        raise ValueError(f"invalid band [{band.min}, {band.max}]")
    if max_launch is not None and max_launch < 0:
        raise ValueError(f"invalid launch limit {max_launch}")
    alive = [s for s in fleet if s.state is not SlaveState.GOING]
    current = len(alive)
    if current < band.min:
        launch = band.min - current
        if max_launch is not None:
            launch = min(launch, max_launch)
        return Plan(band=band, current=current, launch=launch)
    if current > band.max:
        rank = {state: i for i, state in enumerate(REMOVAL_ORDER)}
        # Newest first within a state: sort by (state rank, -launched, id) so
        # the order is total and the plan is deterministic.
        ordered = sorted(alive, key=lambda s: (rank[s.state], -s.launched, s.id))
        victims = tuple(s.id for s in ordered[: current - band.max])
        return Plan(band=band, current=current, remove=victims)
    return Plan(band=band, current=current)


def stabilized(band: Band, history: t.Iterable[tuple[float, Band]], now: float, window: float) -> Band:
    """Scale-in stabilization: never go below the highest min wanted in the last ``window`` seconds.

    ``history`` holds (time, band) pairs from earlier polls; entries older than
    ``now - window`` are ignored. With ``window`` <= 0 the band is returned
    unchanged (the original's behaviour). The max is raised with the min when
    needed so the band stays valid.
    """
    if window <= 0:
        return band
    floor = band.min
    for when, past in history:
        if now - window <= when <= now:
            floor = max(floor, past.min)
    return Band(floor, max(band.max, floor))


# --------------------------------------------------------------------------
# the poll: (fleet snapshot, band, settings, now) -> actions


@dataclass(frozen=True)
class PollSettings:
    """The conf's say in a poll's actions (``BalancerConf.poll_settings()`` builds it)."""

    ports: tuple[int, ...] = ()  # each ready slave is one renderer per port
    max_launch: int | None = None  # at most this many launches in one poll
    drain_time: float = 0.0  # seconds a scaled-in ready slave stays out of the farm before it is terminated


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet as one look saw it. Frozen: the decision reads it, nothing edits it.

    ``slaves`` counts what the plan counts (slaves launched but not yet
    described are PENDING; those past their ready time are GOING and listed in
    ``expired``); ``addresses`` is where each described instance is reached.
    ``instances``, ``gained``, ``lost`` and ``slow`` are for reports and logs.
    """

    slaves: tuple[Slave, ...] = ()
    addresses: t.Mapping[str, str | None] = field(default_factory=dict)
    expired: tuple[str, ...] = ()
    instances: tuple[t.Any, ...] = ()  # the EC2 instances as described (_ec2.Instance)
    gained: tuple[str, ...] = ()  # ready since the last look
    lost: tuple[str, ...] = ()  # ready at the last look, not now
    slow: tuple[tuple[str, int], ...] = ()  # (ready slave, slow checks in a row), kept in the farm

    @property
    def ready(self) -> frozenset[str]:
        return frozenset(s.id for s in self.slaves if s.state is SlaveState.READY)

    def renderers(self, ports: t.Sequence[int], excluding: t.Iterable[str] = ()) -> tuple[str, ...]:
        """``http://ADDRESS:PORT`` of every ready slave (minus ``excluding``), as renderfarm.conf lists them."""
        gone = set(excluding)
        ready = sorted(self.ready - gone)
        return tuple(f"http://{a}:{port}" for a in (self.addresses.get(i) for i in ready) if a for port in ports)


@dataclass(frozen=True)
class Actions:
    """What one poll does, in this order: publish ``renderers``, terminate ``terminate``, launch ``launch``.

    ``drain`` are ready slaves scaled in this poll: out of the farm now,
    terminated ``drain_time`` later. ``draining`` is the drain memory after
    acting (instance id -> when it left the farm); ``kept`` is that memory if
    the poll is held instead (see :meth:`hold`).
    """

    plan: Plan
    slaves: tuple[Slave, ...]  # as counted: the draining ones are GOING
    renderers: tuple[str, ...]
    terminate: tuple[str, ...] = ()
    launch: int = 0
    drain: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    draining: t.Mapping[str, float] = field(default_factory=dict)
    kept: t.Mapping[str, float] = field(default_factory=dict)

    def hold(self) -> Actions:
        """The same poll with nothing launched, terminated or drained (the render farm could not be published)."""
        return dataclasses.replace(
            self,
            plan=dataclasses.replace(self.plan, launch=0, remove=()),
            terminate=(),
            launch=0,
            drain=(),
            expired=(),
            draining=self.kept,
        )


def counted(fleet: FleetSnapshot, draining: t.Mapping[str, float]) -> tuple[Slave, ...]:
    """The fleet's slaves as the plan counts them: draining ones are on their way out."""
    return tuple(dataclasses.replace(s, state=SlaveState.GOING) if s.id in draining else s for s in fleet.slaves)


def alive(slaves: t.Iterable[Slave]) -> int:
    """How many slaves count (not going away)."""
    return sum(1 for s in slaves if s.state is not SlaveState.GOING)


def decide(
    fleet: FleetSnapshot,
    band: Band,
    settings: PollSettings,
    now: float,
    draining: t.Mapping[str, float] | None = None,
) -> Actions:
    """One poll's actions: the daemon, the spot_fleet module and the simulator all act on this.

    Keep the fleet in ``band`` (:func:`plan`). A ready slave that is scaled in
    drains (out of the farm now, terminated ``drain_time`` later); one that
    never served (pending, booting) goes at once, and so do slaves not ready
    within their ready time (``fleet.expired``), which the next poll replaces.
    Draining slaves no longer described are forgotten.
    """
    kept = {i: at for i, at in (draining or {}).items() if i in fleet.addresses}
    slaves = counted(fleet, kept)
    decided = plan(band, slaves, settings.max_launch)
    ready = {s.id for s in slaves if s.state is SlaveState.READY}
    drain = tuple(i for i in decided.remove if settings.drain_time > 0 and i in ready)
    drained = tuple(i for i, since in sorted(kept.items()) if now - since >= settings.drain_time)
    terminate = (
        tuple(i for i in decided.remove if i not in drain)
        + tuple(i for i in fleet.expired if i not in decided.remove)
        + drained
    )
    after = {i: at for i, at in kept.items() if i not in drained}
    after.update(dict.fromkeys(drain, now))
    return Actions(
        plan=decided,
        slaves=slaves,
        renderers=fleet.renderers(settings.ports, excluding=[*terminate, *drain, *kept]),
        terminate=terminate,
        launch=decided.launch,
        drain=drain,
        expired=fleet.expired,
        draining=after,
        kept=kept,
    )
