# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The slave fleet as the daemon and the spot_fleet module both see it.

One place for: where the master is, which address a slave is reached on,
which slaves are ready (and which never became so), the launch spec, the
render farm URLs, and tearing a fleet down.
"""

from __future__ import annotations

import dataclasses
import time
import types
import typing as t
from dataclasses import dataclass, field

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import BalancerConf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    FleetSnapshot,
    Slave,
    SlaveState,
    data_generation,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import (
    EC2,
    GENERATION_TAG,
    LIFECYCLE_TAG,
    ON_DEMAND_VALUE,
    EC2Error,
    Instance,
    LaunchSpec,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._readiness import Probe, check_slaves

#: EC2 states in which an instance still counts (and is still billed).
_ALIVE = {"pending": SlaveState.PENDING, "running": SlaveState.BOOTING}

#: How long one readiness check may take, at most.
CHECK_TIMEOUT = 2.0


@dataclass(frozen=True)
class Master:
    """Where the master is: from instance metadata on EC2, else from the conf."""

    on_ec2: bool = False
    region: str | None = None  # the master's own (metadata); the region to work in is _ec2.region_and_source's
    image_id: str | None = None
    availability_zone: str | None = None
    subnet_id: str | None = None
    vpc_id: str | None = None
    private_ip: str | None = None
    security_group_ids: tuple[str, ...] = ()
    external_ip: str | None = None


def discover_master(conf: BalancerConf, metadata: t.Any | None) -> Master:
    """The original's rules: on EC2, image, zone, subnet, VPC and IP come from metadata."""
    if metadata is not None and metadata.available():
        return Master(
            on_ec2=True,
            region=metadata.region,
            image_id=metadata.image_id,
            availability_zone=metadata.availability_zone,
            subnet_id=metadata.subnet_id,
            vpc_id=metadata.vpc_id,
            private_ip=metadata.private_ip,
            security_group_ids=tuple(metadata.security_group_ids or ()),
            external_ip=conf.master.external_ip or metadata.public_ip,
        )
    return Master(external_ip=conf.master.external_ip)


def slave_address(inst: Instance, mode: str, master: Master) -> str | None:
    """``[SLAVE] address``: auto = private when in the master's VPC or without a public IP, else public."""
    if mode == "private":
        return inst.private_ip
    if mode == "public":
        return inst.public_ip
    if not inst.public_ip or (master.vpc_id and inst.vpc_id == master.vpc_id):
        return inst.private_ip
    return inst.public_ip


@dataclass
class Readiness:
    """Which slaves answered the readiness check, when they last did, and how many checks in a row
    a ready slave has missed by being slow.

    This is the only fleet memory the balancer keeps (it lives as long as the
    daemon); after a restart it is rebuilt by the first poll's checks.
    """

    check: t.Callable[..., dict[str, Probe]] = check_slaves
    ready: set[str] = field(default_factory=set)
    last_ready: dict[str, float] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)  # ready slave -> slow checks in a row

    def update(
        self,
        instances: t.Sequence[Instance],
        addresses: t.Mapping[str, str | None],
        port: int,
        now: float,
        misses_allowed: int = 1,
    ) -> tuple[list[str], list[str]]:
        """Check every running slave (concurrently); returns (newly ready, newly lost) ids.

        A ready slave leaves at once when it is down (refuses, answers wrong)
        or no longer running; when it is only slow, after ``misses_allowed``
        slow checks in a row (1: at the first).
        """
        running = {i.id: addresses[i.id] for i in instances if i.state == "running" and addresses.get(i.id)}
        results = self.check(running, port, CHECK_TIMEOUT)
        gained, lost = [], []
        for iid, probe in results.items():
            if probe is Probe.READY:
                if iid not in self.ready:
                    gained.append(iid)
                self.ready.add(iid)
                self.last_ready[iid] = now
                self.misses.pop(iid, None)
            elif iid in self.ready:
                self.misses[iid] = self.misses.get(iid, 0) + 1 if probe is Probe.SLOW else misses_allowed
                if self.misses[iid] >= misses_allowed:
                    lost.append(iid)
                    self.ready.discard(iid)
                    del self.misses[iid]
        self.ready &= set(running)
        for iid in [k for k in self.misses if k not in self.ready]:
            del self.misses[iid]
        known = {i.id for i in instances}
        for iid in [k for k in self.last_ready if k not in known]:
            del self.last_ready[iid]
        return gained, lost

    def join(
        self, instances: t.Sequence[Instance], addresses: t.Mapping[str, str | None], port: int, now: float
    ) -> list[str]:
        """Between polls: check only the running slaves not ready yet; returns those that now are."""
        waiting = {
            i.id: addresses[i.id]
            for i in instances
            if i.state == "running" and i.id not in self.ready and addresses.get(i.id)
        }
        if not waiting:
            return []
        gained = [iid for iid, probe in self.check(waiting, port, CHECK_TIMEOUT).items() if probe is Probe.READY]
        self.ready.update(gained)
        self.last_ready.update(dict.fromkeys(gained, now))
        return gained

    def classify(
        self, instances: t.Sequence[Instance], now: float, ready_timeout: float
    ) -> tuple[list[Slave], list[str]]:
        """Instances -> slaves for the plan. Pending or booting longer than ``ready_timeout`` seconds
        (since launch, or since the slave last answered) expire: they go, and are replaced."""
        slaves: list[Slave] = []
        expired: list[str] = []
        for inst in instances:
            state = _ALIVE.get(inst.state, SlaveState.GOING)
            if state is SlaveState.BOOTING and inst.id in self.ready:
                state = SlaveState.READY
            if state in (SlaveState.PENDING, SlaveState.BOOTING):
                since = max(inst.launched, self.last_ready.get(inst.id, 0.0))
                if now - since > ready_timeout:
                    expired.append(inst.id)
                    state = SlaveState.GOING
            slaves.append(Slave(inst.id, state, inst.launched, inst.tags.get(GENERATION_TAG)))
        return slaves, expired


#: EC2 is eventually consistent: an instance CreateFleet just returned may be
#: missing from the next DescribeInstances, and one just terminated may still
#: show as running. Each keeps what we did to it this long, so no poll launches
#: a launched slave's twin or counts (or publishes) a terminated one.
LAUNCH_GRACE = 120.0

#: Between polls, while a launched slave has no address yet, the fleet is
#: described again this often (seconds) so that it can be checked once it runs.
DESCRIBE_WHILE_PENDING = 10.0


@dataclass
class FleetView:
    """Looks at the fleet and remembers what one look cannot see.

    :meth:`observe` does the I/O (one DescribeInstances, the readiness checks)
    and returns a frozen :class:`FleetSnapshot`; what to do about it is
    :func:`._decision.decide`'s. The daemon keeps one view for its whole life
    (readiness memory, recent launches and terminations carry over between
    polls); the spot_fleet module keeps one for a run.
    """

    ec2: EC2
    conf: BalancerConf | None
    master: Master
    readiness: Readiness = field(default_factory=Readiness)
    launched: dict[str, float] = field(default_factory=dict)  # id -> when CreateFleet returned it
    generations: dict[str, str | None] = field(default_factory=dict)  # launched id -> its data generation
    terminated: dict[str, float] = field(default_factory=dict)  # id -> when we terminated it
    launched_on_demand: set[str] = field(default_factory=set)  # those of ``launched`` that are on-demand
    last: FleetSnapshot | None = None  # the last look, brought up to date by join()
    looked: float = 0.0  # when the fleet was last described
    # The interruption queue's notices (id -> when EC2 sent it), kept while the instance is described.
    interrupted: dict[str, float] = field(default_factory=dict)
    at_risk: dict[str, float] = field(default_factory=dict)

    def observe(self, now: float) -> FleetSnapshot:
        """Describe the fleet (one call), check the running slaves, classify them."""
        instances = tuple(self.ec2.describe_fleet())
        self.looked = now
        mode = self.conf.slave.address if self.conf else "auto"
        addresses = types.MappingProxyType({i.id: slave_address(i, mode, self.master) for i in instances})
        if self.conf is None:  # tearing down: no ports to check, nothing to classify against
            slaves = tuple(Slave(i.id, _ALIVE.get(i.state, SlaveState.GOING), i.launched) for i in instances)
            return FleetSnapshot(slaves=slaves, addresses=addresses, instances=instances)
        for memory in (self.launched, self.terminated):
            for iid in [i for i, at in memory.items() if now - at > LAUNCH_GRACE]:
                del memory[iid]
        seen = {i.id for i in instances}
        for iid in seen & set(self.launched):
            del self.launched[iid]
        for iid in set(self.generations) - set(self.launched):
            del self.generations[iid]
        self.launched_on_demand &= set(self.launched)
        on_demand = frozenset(
            {i.id for i in instances if i.tags.get(LIFECYCLE_TAG) == ON_DEMAND_VALUE} | self.launched_on_demand
        )
        for memory in (self.interrupted, self.at_risk):
            for iid in set(memory) - seen:
                del memory[iid]
        counted = tuple(i for i in instances if i.id not in self.terminated)
        gained, lost = self.readiness.update(
            counted, addresses, self.conf.slave.ports[0], now, self.conf.slave.ready_misses
        )
        slaves, expired = self.readiness.classify(counted, now, self.conf.slave.ready_timeout * 60)
        slaves += [
            Slave(i.id, SlaveState.GOING, i.launched, i.tags.get(GENERATION_TAG))
            for i in instances
            if i.id in self.terminated
        ]
        slaves += [Slave(iid, SlaveState.PENDING, at, self.generations.get(iid)) for iid, at in self.launched.items()]
        self.last = FleetSnapshot(
            slaves=tuple(slaves),
            addresses=addresses,
            expired=tuple(expired),
            instances=instances,
            gained=tuple(gained),
            lost=tuple(lost),
            slow=tuple(sorted(self.readiness.misses.items())),
            on_demand=on_demand,
            interrupted=types.MappingProxyType(dict(self.interrupted)),
            at_risk=types.MappingProxyType(dict(self.at_risk)),
        )
        return self.last

    def ours(self, instance_id: str) -> bool:
        """Whether ``instance_id`` is one of our slaves, as far as the last look (and launches since) know.

        Before the first look (a balancer just started, adopting its fleet) it
        cannot tell, and says yes: the first look forgets the notices about
        instances it does not describe (``observe`` keeps only ours).
        """
        if self.last is None:
            return True
        return instance_id in self.launched or instance_id in self.last.addresses

    def warned(self, instance_id: str, at: float, interrupted: bool) -> bool:
        """Remember a spot interruption warning (``interrupted``) or a rebalance recommendation for one
        of our slaves, for the next look. False (nothing kept) when it is not ours."""
        if not self.ours(instance_id):
            return False
        memory = self.interrupted if interrupted else self.at_risk
        memory.setdefault(instance_id, at)
        return True

    def waiting(self) -> bool:
        """Whether the last look saw slaves on their way to ready (worth checking between polls)."""
        if self.launched:
            return True
        return self.last is not None and (
            any(
                s.state in (SlaveState.PENDING, SlaveState.BOOTING) and s.id not in self.terminated
                for s in self.last.slaves
            )
        )

    def join(self, now: float) -> FleetSnapshot | None:
        """Between polls: check the slaves on their way to ready. None when there was nothing to check.

        Booting slaves are checked at once (no DescribeInstances). While some
        are still pending (no address yet), the fleet is described again, at
        most every DESCRIBE_WHILE_PENDING seconds. A slave that answers joins
        the render farm within seconds, not at the next poll.
        """
        last = self.last
        if last is None or self.conf is None:
            return None
        pending = bool(self.launched) or any(
            s.state is SlaveState.PENDING and s.id not in self.terminated for s in last.slaves
        )
        if pending and now - self.looked >= DESCRIBE_WHILE_PENDING:
            return self.observe(now)
        booting = {s.id for s in last.slaves if s.state is SlaveState.BOOTING} - set(self.terminated)
        if not booting:
            return None
        instances = [i for i in last.instances if i.id in booting]
        gained = self.readiness.join(instances, last.addresses, self.conf.slave.ports[0], now)
        state = dict.fromkeys(gained, SlaveState.READY) | dict.fromkeys(self.terminated, SlaveState.GOING)
        slaves = tuple(dataclasses.replace(s, state=state.get(s.id, s.state)) for s in last.slaves)
        self.last = dataclasses.replace(last, slaves=slaves, gained=tuple(gained), lost=(), slow=())
        return self.last

    def launched_now(
        self, instance_ids: t.Iterable[str], now: float, generation: str | None = None, on_demand: bool = False
    ) -> None:
        """Remember a launch until DescribeInstances shows it (``generation``: the data it was launched with;
        ``on_demand``: launched on-demand, the spot fallback)."""
        ids = list(instance_ids)
        self.launched.update(dict.fromkeys(ids, now))
        self.generations.update(dict.fromkeys(ids, generation))
        if on_demand:
            self.launched_on_demand.update(ids)

    def terminated_now(self, instance_ids: t.Iterable[str], now: float) -> None:
        self.terminated.update(dict.fromkeys(instance_ids, now))
        self.readiness.ready.difference_update(self.terminated)


def settled(fleet: FleetSnapshot, launched: t.Iterable[str] = (), removed: t.Iterable[str] = ()) -> bool:
    """Every slave that counts is ready, the ``launched`` ones among them, and none of ``removed`` is left."""
    if any(s.state not in (SlaveState.READY, SlaveState.GOING) for s in fleet.slaves):
        return False
    return set(launched) <= fleet.ready and not set(fleet.addresses) & set(removed)


def described(fleet: FleetSnapshot, gone: t.Iterable[str] = ()) -> list[dict[str, t.Any]]:
    """The instances as the daemon's report and the module's result show them (``gone``: terminated since the look)."""
    states = {s.id: s.state.value for s in fleet.slaves}
    ready = fleet.ready - set(gone)
    return [
        {
            "id": i.id,
            "state": i.state,
            "slave_state": states.get(i.id, SlaveState.GOING.value),
            "ready": i.id in ready,
            "address": fleet.addresses.get(i.id),
            "private_ip": i.private_ip,
            "public_ip": i.public_ip,
            "instance_type": i.instance_type,
            "launched": i.launched,
            "generation": i.tags.get(GENERATION_TAG),
        }
        for i in fleet.instances
    ]


def build_launch_spec(
    conf: BalancerConf, ec2: EC2, master: Master, ssh_key: str | None, databases: str | None = None
) -> LaunchSpec:
    """Everything CreateFleet needs, resolved once: image, network, security group.

    ``databases``: the master's GBrowse databases directory, for the slaves' user data.
    """
    slave = conf.slave
    image_ref = slave.image_id or (master.image_id if master.on_ec2 else None)
    if not image_ref:
        raise EC2Error("[SLAVE] image_id is not set and the master is not on EC2: no image to launch")
    image = ec2.resolve_image(image_ref)
    subnet = slave.subnet or (master.subnet_id if master.on_ec2 else None)
    zone = slave.availability_zone or (master.availability_zone if master.on_ec2 and not subnet else None)
    if slave.security_group:
        groups: tuple[str, ...] = (ec2.find_security_group(slave.security_group, subnet),)
    else:
        vpc_id = ec2.describe_subnet(subnet).vpc_id if subnet else master.vpc_id
        source: dict[str, str]
        if master.on_ec2 and master.vpc_id and vpc_id == master.vpc_id and master.security_group_ids:
            source = {"source_group_id": master.security_group_ids[0]}
        elif master.on_ec2 and master.private_ip and vpc_id == master.vpc_id:
            source = {"source_cidr": f"{master.private_ip}/32"}
        elif master.external_ip:
            source = {"source_cidr": f"{master.external_ip}/32"}
        else:
            raise EC2Error(
                "[MASTER] external_ip is not set and the master is not on EC2: "
                "set it (the slaves' firewall admits only the master) or set [SLAVE] security_group"
            )
        groups = (ec2.ensure_security_group(vpc_id, slave.ports, ssh=bool(ssh_key), **source),)
    return LaunchSpec(
        image_id=image.id,
        instance_types=slave.instance_types,
        spot_bid=slave.spot_bid,
        ports=slave.ports,
        subnet_id=subnet,
        availability_zone=zone,
        security_group_ids=groups,
        key_name=ssh_key,
        data_snapshots=slave.data_snapshots,
        databases=databases,
        generation=data_generation(slave.image_id, slave.data_snapshots),
    )


def teardown(
    ec2: EC2,
    wait: float = 600.0,
    sleep: t.Callable[[float], None] = time.sleep,
    on_terminate: t.Callable[[list[Instance]], None] | None = None,
) -> list[str]:
    """Terminate every slave of this balancer, wait until they are gone, then delete the
    launch template and the security group. Returns the ids still alive after ``wait`` s.

    ``on_terminate`` is told the instances each terminate call asks for (the daemon logs them)."""
    deadline = time.monotonic() + wait
    live: list[str] = []
    while True:
        fleet = [i for i in ec2.describe_fleet() if i.state != "terminated"]
        live = [i.id for i in fleet]
        if not live:
            break
        running = [i for i in fleet if i.state != "shutting-down"]
        if running:
            ec2.terminate([i.id for i in running])
            if on_terminate is not None:
                on_terminate(running)
        if time.monotonic() > deadline:
            break
        sleep(2)
    ec2.delete_launch_template()
    ec2.delete_security_group()
    return live
