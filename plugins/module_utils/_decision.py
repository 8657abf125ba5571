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
import hashlib
import json
import math
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
    generation: str | None = None  # the data generation it was launched with (its tag); None: untagged


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


def plan(
    band: Band, fleet: t.Sequence[Slave], max_launch: int | None = None, first: t.Collection[str] = ()
) -> Plan:
    """Keep the fleet in ``band``.

    Slaves that are going away do not count. Below ``band.min`` launch the
    difference (at most ``max_launch`` in one poll when given); above
    ``band.max`` remove the difference: pending before booting before ready,
    and among each, the newest first (the oldest have proven themselves, and
    the newest are the least likely to be serving a request), except that the
    ids in ``first`` (stale data, see :func:`refresh`) go before the others
    of their state. Inside the band do nothing: that band is the hysteresis.
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
        ordered = sorted(alive, key=lambda s: (rank[s.state], s.id not in first, -s.launched, s.id))
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
# fresh data: slaves launched with an older image or older data snapshots


def data_generation(image_id: str | None, data_snapshots: t.Sequence[str]) -> str:
    """A short digest of what a slave is launched with: ``[SLAVE] image_id`` and ``data_snapshots``, in order.

    Each slave is tagged with it at launch (``gbrowse-aws:data-generation``),
    so after a sync the balancer tells the slaves with the old data from the
    fresh ones by their tags alone: a restarted balancer carries on a refresh.
    12 hex digits: a label for logs and tags, not a security boundary.
    """
    text = json.dumps([image_id or "", list(data_snapshots)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def stale(slaves: t.Iterable[Slave], generation: str | None) -> tuple[str, ...]:
    """The slaves that count but do not run ``generation``; none when there is no generation to run.

    An untagged slave (launched by a balancer older than the refresh) is
    stale: nothing says what data it has, and replacing it once is cheaper
    than serving old data for good.
    """
    if not generation:
        return ()
    return tuple(s.id for s in slaves if s.state is not SlaveState.GOING and s.generation != generation)


def refresh_band(band: Band, stale_count: int, batch: int) -> Band:
    """The band while stale slaves are replaced: the band itself, unless it is a fixed size.

    A band with room (``max > min``) is kept: the refresh launches into the
    room under max. A fixed-size farm (``min == max``) could replace no slave
    without dropping below min, so its max is raised by a batch (at most one
    per stale slave) until no stale slave is left. A band with max 0 wants no
    slave at all: nothing is replaced.
    """
    if stale_count <= 0 or batch <= 0 or band.max == 0 or band.max > band.min:
        return band
    return Band(band.min, band.max + min(batch, stale_count))


@dataclass(frozen=True)
class Refresh:
    """The refresh's step in one poll: ``retire`` stale slaves, or ``launch`` fresh ones (never both)."""

    stale: tuple[str, ...] = ()  # every stale slave that counts, before this step
    retire: tuple[str, ...] = ()
    launch: int = 0


def refresh(band: Band, slaves: t.Sequence[Slave], settings: PollSettings) -> Refresh:
    """Replace the slaves not running ``settings.generation``, ``refresh_batch`` at a time.

    ``band`` is the refresh's (:func:`refresh_band`) and the fleet is inside
    it: the plan has nothing to do this poll. Nothing happens while fresh
    slaves are on their way (pending, booting): at most a batch is. Then one
    step, the first that applies:

    1. stale slaves that are not ready go (they serve nothing), newest first;
    2. stale ready slaves go, oldest first, while the ready slaves left are
       at least ``band.min`` — once a fresh slave is ready to take over, or
       when the fleet is at the band's max (no room to launch first);
    3. fresh slaves are launched into the room under the band's max: at most
       a batch, one per stale slave, ``max_launch`` per poll.

    So the slaves the band's min needs are replaced launch first and the
    ready count never drops below min; a new image or snapshot whose slaves
    never become ready costs no ready stale slave unless the fleet is at its
    max. Stale slaves above the min may go without a replacement: the band
    says min is enough. Each step ends a poll; the next poll sees its effect.
    """
    old = stale(slaves, settings.generation)
    batch = settings.refresh_batch
    if not old or batch <= 0:
        return Refresh(stale=old)
    alive_slaves = [s for s in slaves if s.state is not SlaveState.GOING]
    on_the_way = [s for s in alive_slaves if s.id not in old and s.state is not SlaveState.READY]
    if on_the_way:
        return Refresh(stale=old)
    is_old = set(old)
    unready = sorted(
        (s for s in alive_slaves if s.id in is_old and s.state is not SlaveState.READY),
        key=lambda s: (-s.launched, s.id),
    )
    if unready:
        return Refresh(stale=old, retire=tuple(s.id for s in unready[:batch]))
    ready = [s for s in alive_slaves if s.state is SlaveState.READY]
    fresh_ready = [s for s in ready if s.id not in is_old]
    spare = len(ready) - band.min
    if spare > 0 and (fresh_ready or len(alive_slaves) >= band.max):
        oldest = sorted((s for s in ready if s.id in is_old), key=lambda s: (s.launched, s.id))
        return Refresh(stale=old, retire=tuple(s.id for s in oldest[: min(batch, spare)]))
    launch = min(batch, len(old), band.max - len(alive_slaves))
    if settings.max_launch is not None:
        launch = min(launch, settings.max_launch)
    return Refresh(stale=old, launch=max(launch, 0))


# --------------------------------------------------------------------------
# the poll: (fleet snapshot, band, settings, now) -> actions


@dataclass(frozen=True)
class PollSettings:
    """The conf's say in a poll's actions (``BalancerConf.poll_settings()`` builds it)."""

    ports: tuple[int, ...] = ()  # each ready slave is one renderer per port
    max_launch: int | None = None  # at most this many launches in one poll
    drain_time: float = 0.0  # seconds a scaled-in ready slave stays out of the farm before it is terminated
    generation: str | None = None  # the data generation slaves should run (data_generation()); None: no refresh
    refresh_batch: int = 1  # at most this many slaves replaced at a time for new data; 0: never replaced
    max_hourly_spend: float | None = None  # USD/hour for the whole fleet; None: no cap
    spot_bid: float | None = None  # a spot slave's price when the current spot price is unknown
    on_demand_fallback: int = 0  # polls of failed spot launches before on-demand ones; 0: never
    on_demand_price: float | None = None  # what an on-demand slave costs (USD/hour), for the cap


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
    on_demand: frozenset[str] = frozenset()  # on-demand slaves (the spot fallback's); all others are spot
    # The interruption queue's notices (instance id -> when EC2 sent it): see decide().
    interrupted: t.Mapping[str, float] = field(default_factory=dict)  # spot reclaims it within two minutes
    at_risk: t.Mapping[str, float] = field(default_factory=dict)  # rebalance recommendation: replace it first

    @property
    def ready(self) -> frozenset[str]:
        return frozenset(s.id for s in self.slaves if s.state is SlaveState.READY)

    def renderers(self, ports: t.Sequence[int], excluding: t.Iterable[str] = ()) -> tuple[str, ...]:
        """``http://ADDRESS:PORT`` of every ready slave (minus ``excluding``), as renderfarm.conf lists them."""
        gone = set(excluding)
        ready = sorted(self.ready - gone)
        return tuple(f"http://{a}:{port}" for a in (self.addresses.get(i) for i in ready) if a for port in ports)


#: What a launch asks EC2 for (``Actions.lifecycle``).
SPOT = "spot"
ON_DEMAND = "on-demand"


@dataclass(frozen=True)
class Market:
    """What the daemon knows of the spot market this poll; the pure decision has no other way to learn it.

    ``spot_price``: the highest current spot price (USD/hour) among the offered
    instance types in the fleet's zone(s), None when unknown (then the spot
    bid is the price). ``spot_failures``: polls in a row whose spot launch
    failed for lack of capacity (reset by a spot launch that succeeds).
    """

    spot_price: float | None = None
    spot_failures: int = 0


def spot_price(settings: PollSettings, market: Market) -> float | None:
    """What a spot slave is counted at: the current price but never more than the bid (EC2 charges
    no more), else the bid."""
    price = market.spot_price if market.spot_price is not None else settings.spot_bid
    if price is not None and settings.spot_bid is not None:
        price = min(price, settings.spot_bid)
    return price


def affordable(cap: float, spend: float, price: float) -> int:
    """How many slaves at ``price`` fit between ``spend`` and ``cap`` (USD/hour); never negative."""
    if price <= 0:
        raise ValueError(f"invalid price {price!r}")
    return max(0, math.floor((cap - spend) / price + 1e-9))


@dataclass(frozen=True)
class Actions:
    """What one poll does, in this order: publish ``renderers``, terminate ``terminate``, launch ``launch``.

    ``drain`` are ready slaves scaled in this poll: out of the farm now,
    terminated ``drain_time`` later. ``draining`` is the drain memory after
    acting (instance id -> when it left the farm); ``kept`` is that memory if
    the poll is held instead (see :meth:`hold`). ``interrupted`` left the farm
    this poll on a spot interruption warning, ``retired`` on a rebalance
    recommendation (their replacement is ready); ``replacing`` of ``launch``
    replace warned slaves.
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
    stale: tuple[str, ...] = ()  # slaves not running the current data generation (refresh())
    refresh: tuple[str, ...] = ()  # stale slaves retired this poll (also in terminate or drain)
    refresh_launch: int = 0  # of ``launch``, how many replace stale slaves
    lifecycle: str = SPOT  # what ``launch`` launches: SPOT, or ON_DEMAND (the fallback)
    capped: int = 0  # launches the plan wanted and max_hourly_spend withheld
    spend: float | None = None  # USD/hour of the slaves still billed after this poll (with its launches), when capped
    interrupted: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    replacing: int = 0

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
            refresh=(),
            refresh_launch=0,
            interrupted=(),
            retired=(),
            replacing=0,
        )


def counted(fleet: FleetSnapshot, draining: t.Mapping[str, float]) -> tuple[Slave, ...]:
    """The fleet's slaves as the plan counts them: draining ones are on their way out."""
    return tuple(dataclasses.replace(s, state=SlaveState.GOING) if s.id in draining else s for s in fleet.slaves)


def alive(slaves: t.Iterable[Slave]) -> int:
    """How many slaves count (not going away)."""
    return sum(1 for s in slaves if s.state is not SlaveState.GOING)


@dataclass(frozen=True)
class _Poll:
    """One poll's view of the fleet, derived once from the snapshot: what each rule of :func:`decide` reads."""

    fleet: FleetSnapshot
    band: Band
    settings: PollSettings
    market: Market
    kept: t.Mapping[str, float]  # the drain memory of slaves still described
    slaves: tuple[Slave, ...]  # as counted: draining ones are GOING
    interrupted: t.Mapping[str, float]  # spot interruption warnings of slaves not going away
    at_risk: t.Mapping[str, float]  # rebalance recommendations of slaves not draining nor interrupted
    healthy: tuple[Slave, ...]  # what the band counts: warned slaves are GOING too
    stale: tuple[str, ...]  # slaves with older data
    ceiling: Band  # the band, with room for a refresh batch
    on_demand: frozenset[str]  # on-demand slaves that count
    drained: tuple[str, ...]  # drained for drain_time: terminated now

    @classmethod
    def of(
        cls,
        fleet: FleetSnapshot,
        band: Band,
        settings: PollSettings,
        now: float,
        draining: t.Mapping[str, float],
        market: Market,
    ) -> "_Poll":
        kept = {i: at for i, at in draining.items() if i in fleet.addresses}
        slaves = counted(fleet, kept)
        running = {s.id for s in fleet.slaves if s.state is not SlaveState.GOING}
        interrupted = {i: at for i, at in fleet.interrupted.items() if i in running}
        at_risk = {i: at for i, at in fleet.at_risk.items() if i in running and i not in kept and i not in interrupted}
        warned = {**at_risk, **interrupted}
        healthy = tuple(dataclasses.replace(s, state=SlaveState.GOING) if s.id in warned else s for s in slaves)
        old = stale(healthy, settings.generation)
        return cls(
            fleet=fleet,
            band=band,
            settings=settings,
            market=market,
            kept=kept,
            slaves=slaves,
            interrupted=interrupted,
            at_risk=at_risk,
            healthy=healthy,
            stale=old,
            ceiling=refresh_band(band, len(old), settings.refresh_batch),
            on_demand=frozenset(s.id for s in healthy if s.id in fleet.on_demand and s.state is not SlaveState.GOING),
            drained=tuple(i for i, since in sorted(kept.items()) if now - since >= settings.drain_time),
        )

    @property
    def warned(self) -> dict[str, float]:
        return {**self.at_risk, **self.interrupted}


@dataclass(frozen=True)
class _Attempt:
    """What one poll would do launching ``lifecycle`` slaves: :func:`decide` tries on-demand, then spot."""

    lifecycle: str
    plan: Plan
    refreshed: Refresh
    replaces: int  # of the plan's launches, how many replace warned slaves
    retired: tuple[str, ...]  # slaves at risk retired
    drain: tuple[str, ...]
    terminate: tuple[str, ...]
    withheld: int  # launches max_hourly_spend withheld
    spend: float | None


def _planned(poll: _Poll, lifecycle: str) -> tuple[Plan, Refresh]:
    """The band's rule (:func:`plan`), with the back-to-spot rule while on-demand slaves run, or the refresh's."""
    if lifecycle == SPOT and poll.on_demand:
        decided = _back_to_spot(poll.ceiling, poll.healthy, poll.on_demand, poll.settings.max_launch, poll.stale)
        return decided, Refresh(stale=poll.stale)
    decided = plan(poll.ceiling, poll.healthy, poll.settings.max_launch, first=poll.stale)
    refreshed = refresh(poll.ceiling, poll.healthy, poll.settings) if decided.idle else Refresh(stale=poll.stale)
    if refreshed.retire or refreshed.launch:
        decided = dataclasses.replace(decided, launch=refreshed.launch, remove=refreshed.retire)
    return decided, refreshed


def _replacing(poll: _Poll, decided: Plan) -> tuple[Plan, int, tuple[str, ...]]:
    """The interruption rule: launches for the warned slaves. (plan, how many of its launches replace,
    slaves at risk retired)."""
    warned = poll.warned
    replaced = replacements(warned, poll.healthy, exclude=decided.remove)
    unreplaced = [i for i in sorted(warned, key=lambda i: (warned[i], i)) if i not in replaced]
    # The band's min, and beyond it (up to its max) one per unreplaced warned slave: each launch
    # replaces one. Warned slaves past that have no room: they go now.
    room = max(0, poll.band.max - (alive(poll.healthy) - len(decided.remove)))
    launch = max(decided.launch, min(room, len(unreplaced)))
    count = min(len(unreplaced), launch)
    if poll.settings.max_launch is not None:
        launch = min(launch, poll.settings.max_launch)
    states = {s.id: s.state for s in poll.healthy}
    retired = tuple(
        i
        for i in sorted(poll.at_risk)
        if (i in replaced and states.get(replaced[i]) is SlaveState.READY) or i in unreplaced[count:]
    )
    return dataclasses.replace(decided, launch=launch), min(count, launch), retired


def _attempt(poll: _Poll, lifecycle: str, out: tuple[str, ...]) -> _Attempt:
    """The rules in turn for ``lifecycle`` launches: the band (or refresh), interruptions, drain, the spend cap."""
    decided, refreshed = _planned(poll, lifecycle)
    decided, replaces, retired = _replacing(poll, decided)
    going = (*decided.remove, *retired, *out)
    ready = {s.id for s in poll.slaves if s.state is SlaveState.READY}
    drain = tuple(i for i in going if poll.settings.drain_time > 0 and i in ready)
    terminate = (
        *(i for i in going if i not in drain),
        *(i for i in poll.fleet.expired if i not in decided.remove),
        *poll.drained,
    )
    decided, withheld, spend = capped(decided, poll.fleet, terminate, poll.settings, poll.market, lifecycle)
    return _Attempt(lifecycle, decided, refreshed, replaces, retired, drain, terminate, withheld, spend)


def decide(
    fleet: FleetSnapshot,
    band: Band,
    settings: PollSettings,
    now: float,
    draining: t.Mapping[str, float] | None = None,
    market: Market | None = None,
) -> Actions:
    """One poll's actions: the daemon, the spot_fleet module and the simulator all act on this.

    Keep the fleet in ``band`` (:func:`plan`). A ready slave that is scaled in
    drains (out of the farm now, terminated ``drain_time`` later); one that
    never served (pending, booting) goes at once, and so do slaves not ready
    within their ready time (``fleet.expired``), which the next poll replaces.
    Draining slaves no longer described are forgotten. Slaves with data
    older than ``settings.generation`` go first when the fleet shrinks and,
    inside the band, are replaced a batch at a time (:func:`refresh`).

    With ``market`` (the daemon's; see :class:`Market`):

    - **spend cap**: launches stop where the slaves still billed (draining
      ones too; on-demand ones at ``on_demand_price``) plus the launches would
      cost more than ``max_hourly_spend`` an hour (:func:`capped`); a refresh's
      launches too;
    - **on-demand fallback**: after ``on_demand_fallback`` polls of failed spot
      launches, a fleet below the band's min is filled with on-demand slaves
      (when not even one fits under the cap, spot is tried again instead);
    - **back to spot**: while on-demand slaves run and the min is met, the
      plan counts spot slaves only, so it launches spot ones in their place
      (a capacity error there just counts one more failed poll); an on-demand
      slave goes once enough spot slaves are *ready* to hold the min without it.
      The refresh waits meanwhile: the spot slaves come with the new data.

    Warned slaves (the interruption queue's notices) do not count for the
    band, and each is replaced while the band has room for its replacement
    (up to ``band.max`` without them): a slave launched after the notice is
    its replacement (:func:`replacements`), so no later poll launches a
    second one. A slave with a spot interruption warning
    (``fleet.interrupted``) leaves the farm at once and goes like a scaled-in
    one (drains, or goes at once if it never served; spot takes it within two
    minutes anyway). One with a rebalance recommendation (``fleet.at_risk``)
    keeps serving until its replacement is ready, then is retired the same
    way; when the band has no room for a replacement it is retired at once.
    Replacements are launches like any other (spend cap, fallback).
    """
    market = market or Market()
    poll = _Poll.of(fleet, band, settings, now, draining or {}, market)
    out = tuple(sorted(i for i in poll.interrupted if i not in poll.kept))  # out of the farm this poll
    fallback = 0 < settings.on_demand_fallback <= market.spot_failures and alive(poll.healthy) < band.min
    attempt = _attempt(poll, ON_DEMAND, out) if fallback else None
    if attempt is None or not attempt.plan.launch:  # no on-demand slave fits under the cap: a cheaper spot one may
        attempt = _attempt(poll, SPOT, out)
    after = {i: at for i, at in poll.kept.items() if i not in poll.drained}
    after.update(dict.fromkeys(attempt.drain, now))
    return Actions(
        plan=attempt.plan,
        slaves=tuple(
            dataclasses.replace(s, state=SlaveState.GOING) if s.id in poll.interrupted else s for s in poll.slaves
        ),
        renderers=fleet.renderers(
            settings.ports, excluding=[*attempt.terminate, *attempt.drain, *poll.kept, *poll.interrupted]
        ),
        terminate=attempt.terminate,
        launch=attempt.plan.launch,
        drain=attempt.drain,
        expired=fleet.expired,
        draining=after,
        kept=poll.kept,
        stale=poll.stale,
        refresh=attempt.refreshed.retire,
        refresh_launch=min(attempt.refreshed.launch, attempt.plan.launch),
        lifecycle=attempt.lifecycle,
        capped=attempt.withheld,
        spend=attempt.spend,
        interrupted=out,
        retired=attempt.retired,
        replacing=min(attempt.replaces, attempt.plan.launch),
    )


def replacements(
    warned: t.Mapping[str, float], slaves: t.Iterable[Slave], exclude: t.Iterable[str] = ()
) -> dict[str, str]:
    """Warned slave -> its replacement: a slave that counts, launched at or after the notice.

    Each slave replaces one warned slave at most, the earliest notices first;
    ``exclude`` (slaves this poll removes) replace none. Launch times are
    EC2's (or, for a slave launched but not yet described, the balancer's
    clock when CreateFleet returned); notice times are EventBridge's.
    """
    gone = set(exclude)
    candidates = sorted(
        (s for s in slaves if s.state is not SlaveState.GOING and s.id not in gone), key=lambda s: (s.launched, s.id)
    )
    used: set[str] = set()
    found: dict[str, str] = {}
    for iid in sorted(warned, key=lambda i: (warned[i], i)):
        for slave in candidates:
            if slave.id not in used and slave.launched >= warned[iid]:
                used.add(slave.id)
                found[iid] = slave.id
                break
    return found


def _back_to_spot(
    band: Band, slaves: t.Sequence[Slave], on_demand: t.AbstractSet[str], max_launch: int | None, first: t.Collection[str] = ()
) -> Plan:
    """The plan while on-demand slaves run and spot may be back: spot slaves alone are kept in ``band``
    (so spot ones are launched in the on-demand ones' place), and the on-demand ones not needed to hold
    the min with the *ready* spot slaves go (pending before booting before ready, newest first).
    ``first``: spot slaves to scale in first (stale ones)."""
    spot_only = tuple(dataclasses.replace(s, state=SlaveState.GOING) if s.id in on_demand else s for s in slaves)
    decided = plan(band, spot_only, max_launch, first=first)
    ready_spot = sum(1 for s in spot_only if s.state is SlaveState.READY and s.id not in decided.remove)
    keep = max(0, band.min - ready_spot)
    rank = {state: i for i, state in enumerate(REMOVAL_ORDER)}
    ordered = sorted((s for s in slaves if s.id in on_demand), key=lambda s: (rank[s.state], -s.launched, s.id))
    retire = tuple(s.id for s in ordered[: max(0, len(ordered) - keep)])
    return dataclasses.replace(decided, current=alive(slaves), remove=decided.remove + retire)


def capped(
    decided: Plan,
    fleet: FleetSnapshot,
    terminate: t.Collection[str],
    settings: PollSettings,
    market: Market,
    lifecycle: str = SPOT,
) -> tuple[Plan, int, float | None]:
    """``decided`` with its launches cut to ``max_hourly_spend``: (plan, launches withheld, spend after the poll).

    Billed: every described slave not going away and not terminated this poll
    (a draining slave still bills). A spot slave counts at :func:`spot_price`
    (the highest current price among the offered types: the fleet may get
    any of them), an on-demand one at ``on_demand_price``. Without a cap, or
    without a price to count by, nothing is cut and the spend is None. The
    cap never terminates anything: a fleet above it (the price rose) only
    stops growing.
    """
    cap = settings.max_hourly_spend
    spot = spot_price(settings, market)
    demand = settings.on_demand_price if settings.on_demand_price is not None else spot
    if cap is None or spot is None or demand is None:
        return decided, 0, None
    gone = set(terminate)
    billed = [s for s in fleet.slaves if s.state is not SlaveState.GOING and s.id not in gone]
    spend = sum(demand if s.id in fleet.on_demand else spot for s in billed)
    price = demand if lifecycle == ON_DEMAND else spot
    launch = min(decided.launch, affordable(cap, spend, price))
    return dataclasses.replace(decided, launch=launch), decided.launch - launch, spend + launch * price
