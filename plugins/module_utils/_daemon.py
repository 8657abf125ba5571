# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The balancer: every poll sample, reconcile, check, decide, act, publish.

State that matters lives in EC2 tags, not in this process: the fleet is
whatever carries our balancer id, so a restarted balancer adopts what it had.
The only memory kept here is which slaves answered the readiness check and
when, and the controller's recent load samples; both are rebuilt within a
poll or two (the samples: within the controller's windows) after a restart.
"""

from __future__ import annotations

# The daemon runs outside Ansible (no AnsibleModule): it runs the reload
# command with subprocess like any daemon does.
# pylint: disable=ansible-bad-function

import collections
import logging
import os
import select
import signal
import socket
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import BalancerConf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import JOIN_INTERVAL, SAMPLE_INTERVAL, Controller, Policy
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _decision as dec
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import Band, Plan
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, CapacityError, EC2Error, Instance, LaunchSpec
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _events as ev
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._history import JsonLines
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _state
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import (
    CHECK_TIMEOUT,
    FleetView,
    Master,
    Readiness,
    build_launch_spec,
    described,
    teardown,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import KNOWN_CONF_DIRS, writable_directory
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._interruptions import Kind, Malformed, describe, parse
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import Metrics, NoMetrics
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._readiness import Probe, check_slaves
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import write_renderfarm
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import Load, LoadMeter, StatusError

LOG = logging.getLogger("gbrowse_aws.balancer")

# --------------------------------------------------------------------------
# logging, sd_notify, signals


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
VERBOSITY_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


class OriginalFormatter(logging.Formatter):
    """``[24/Nov/2026:10:00:00 +0000] message``, as the Perl balancer wrote, whatever the locale."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        lt = time.localtime(record.created)
        day = time.strftime("%d/", lt) + MONTHS[lt.tm_mon - 1] + time.strftime("/%Y:%H:%M:%S %z", lt)
        return day

    def format(self, record: logging.LogRecord) -> str:
        line = f"[{self.formatTime(record)}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(verbosity: int, logfile: str | None = None, stamped: bool = True) -> logging.Handler:
    """Log to ``logfile`` (stamped like the original) or stderr (plain under systemd: journald stamps)."""
    if logfile:
        handler: logging.Handler = logging.FileHandler(logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(OriginalFormatter() if stamped or logfile else logging.Formatter("%(message)s"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(VERBOSITY_LEVELS.get(verbosity, logging.DEBUG))
    LOG.propagate = False
    return handler


class Notifier:
    """sd_notify(3) in a few lines of stdlib; a no-op outside systemd."""

    def __init__(self, environ: t.Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 2_000_000  # ping at half the timeout

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode("utf-8"))
        except OSError as exc:  # systemd gone or socket unreachable: not fatal
            LOG.debug("sd_notify failed: %s", exc)


class Signals:
    """Signal handlers only record the signal; the loop acts on it (self-pipe wake-up)."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def wake(self) -> None:
        """Wake the loop from another thread (the interruption queue's receiver) or a handler."""
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._write, b"x")
        except OSError:
            pass

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop = True
        self._wake()

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload = True
        self._wake()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early when a signal arrives."""
        if seconds > 0 and not (self.stop or self.reload):
            try:
                select.select([self._read], [], [], seconds)
            except InterruptedError:
                pass
        try:
            while os.read(self._read, 512):
                pass
        except OSError:
            pass


# --------------------------------------------------------------------------
# the balancer


@dataclass
class PollReport:
    """What one poll saw and did; printed by --once/--dry-run, logged, sent as STATUS=."""

    load: float | None
    load_signal: str
    req_per_sec: float | None
    busy_workers: int | None
    idle_workers: int | None
    band: Band
    held: bool
    fleet: list[dict[str, t.Any]]
    counts: dict[str, int]
    plan: Plan
    expired: list[str]
    renderers: list[str]
    launched: list[str]
    errors: list[str]
    dry_run: bool
    publish_error: str | None = None  # set while the render farm cannot be published: the fleet is held
    at: float = 0.0  # when the poll ran, seconds since the epoch
    generation: str | None = None  # the data generation slaves should run
    stale: list[str] = field(default_factory=list)  # slaves that do not run it yet
    refresh: list[str] = field(default_factory=list)  # stale slaves retired this poll
    refresh_launch: int = 0  # slaves launched this poll to replace stale ones
    why: str = ""  # which load table row gave the band, and what held it up
    measured: float | None = None  # the request rate of the poll's own sample
    requests: int | None = None  # requests served since the last poll (for replay by simulate)
    seconds: float = 0.0  # ... over these seconds
    events: list[dict[str, t.Any]] = field(default_factory=list)  # what happened to each slave since the last poll
    cap_spend: float | None = None  # USD/hour of the fleet after this poll, as max_hourly_spend counts it
    capped: int = 0  # launches max_hourly_spend withheld
    lifecycle: str = dec.SPOT  # what this poll's launches were: spot, or on-demand (the fallback)
    on_demand: int = 0  # on-demand slaves in the fleet
    spot_failures: int = 0  # polls in a row whose spot launch found no capacity
    interrupted: list[str] = field(default_factory=list)  # out on a spot interruption warning
    retired: list[str] = field(default_factory=list)  # at risk, replaced: out

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "time": self.at,
            "load": self.load,
            "load_signal": self.load_signal,
            "req_per_sec": self.req_per_sec,
            "busy_workers": self.busy_workers,
            "idle_workers": self.idle_workers,
            "min": self.band.min,
            "max": self.band.max,
            "held": self.held,
            "fleet": {**self.counts, "instances": self.fleet},
            "plan": {
                "current": self.plan.current,
                "launch": self.plan.launch,
                "remove": list(self.plan.remove),
                "replace_unready": self.expired,
                "refresh": self.refresh,
                "refresh_launch": self.refresh_launch,
            },
            "generation": self.generation,
            "stale": self.stale,
            "renderfarm": self.renderers,
            "launched": self.launched,
            "errors": self.errors,
            "dry_run": self.dry_run,
            "publish_error": self.publish_error,
            "why": self.why,
            "measured": self.measured,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "events": self.events,
            "cap_spend": self.cap_spend,
            "capped": self.capped,
            "lifecycle": self.lifecycle,
            "on_demand": self.on_demand,
            "spot_failures": self.spot_failures,
            "interrupted": self.interrupted,
            "retired": self.retired,
        }

    def status_line(self) -> str:
        load = "n/a" if self.load is None else f"{self.load:.2f}"
        lifetime = "n/a" if self.req_per_sec is None else f"{self.req_per_sec:.2f}"
        c = self.counts
        line = (
            f"load {load} req/s (Apache lifetime {lifetime}); "
            f"want {self.band.min}-{self.band.max}{' (held)' if self.held else ''}; "
            f"slaves {c['pending']} pending, {c['booting']} booting, {c['ready']} ready"
        )
        if self.publish_error:
            line += f"; HOLDING the fleet (no launches, no terminations): {self.publish_error}"
        return line


class Balancer:
    """One balancer: its conf, its Apache, its tagged fleet, its render farm."""

    def __init__(
        self,
        conf: BalancerConf,
        *,
        ec2: EC2,
        meter: LoadMeter,
        master: Master,
        dry_run: bool = False,
        ssh_key: str | None = None,
        databases: str | None = None,
        clock: t.Callable[[], float] = time.time,
        check: t.Callable[..., dict[str, Probe]] = check_slaves,
        reload: t.Callable[[str], str | None] | None = None,
        gbrowse_conf_dir: str = KNOWN_CONF_DIRS[0],
        state_file: str | None = None,
        history: JsonLines | None = None,
        identity: t.Mapping[str, t.Any] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.conf = conf
        self.ec2 = ec2
        self.meter = meter
        self.master = master
        self.dry_run = dry_run
        self.ssh_key = ssh_key
        self.databases = databases  # the master's GBrowse databases: the slaves' user data puts the synced ones there
        self.clock = clock
        self.fleet = FleetView(ec2, conf, master, readiness=Readiness(check=check))
        self.reload_apache = reload or run_reload_command
        self.gbrowse_conf_dir = gbrowse_conf_dir
        self.publish_error: str | None = None  # why the last publish failed; None when GBrowse has our farm
        self._reload_due = False  # renderfarm.conf changed but the reload failed: reload again next poll
        self.controller = Controller(conf.table, Policy.from_master(conf.master))
        self.settings = conf.poll_settings()
        self.alive = 0  # slaves not going away, as of the last poll
        # Scaled-in slaves out of the render farm, terminated drain_time seconds
        # after they left it (instance id -> when): a CGI GBrowse request reads
        # renderfarm.conf when it starts, and may still call them until it ends.
        self.draining: dict[str, float] = {}
        self._spec: LaunchSpec | None = None
        # What status, the history and the log tell about the balancer (see _state, _history, _events).
        self.state_file = state_file
        self.history = history
        self.identity = dict(identity or {})  # balancer id, conf path, host: shown by status
        self.started = clock()
        self.spend = _state.Spend(self.started)
        self.farm: dict[str, str | None] = {}  # the slaves renderfarm.conf lists (id -> address), as published
        self.ours: set[str] = set()  # slaves we terminated: their going is no surprise
        self.recent: collections.deque[ev.SlaveEvent] = collections.deque(maxlen=_state.RECENT_EVENTS)
        self.recent_errors: collections.deque[tuple[float, str]] = collections.deque(maxlen=_state.RECENT_ERRORS)
        self._events: list[ev.SlaveEvent] = []  # since the last poll's report
        self._requests = self._span = 0.0  # requests counted by the samples since the last poll, and their seconds
        self._last: PollReport | None = None
        self._record_error: str | None = None
        self.spot_failures = 0  # polls in a row whose spot launch failed for capacity (the on-demand fallback's count)
        self.cap_binding = False  # whether max_hourly_spend withheld launches at the last poll that wanted any
        self.metrics = metrics or NoMetrics()  # told each poll, slave event, status read failure (_metrics.py)

    # -- configuration ------------------------------------------------------

    def replace_conf(self, conf: BalancerConf) -> bool:
        """SIGHUP: new conf, same fleet. The launch spec is rebuilt on the next launch.

        Returns True when the load meter changed (a new Apache URL): it needs a new baseline.
        """
        old = self.conf.master
        if (conf.table, Policy.from_master(conf.master)) != (self.conf.table, self.controller.policy):
            self.controller = Controller(conf.table, Policy.from_master(conf.master))
        self.conf = self.fleet.conf = conf
        self.settings = conf.poll_settings()
        self._spec = None
        if (old.server_status_url, old.status_timeout) == (conf.master.server_status_url, conf.master.status_timeout):
            return False
        self.meter = LoadMeter(conf.master.server_status_url, timeout=conf.master.status_timeout)
        return True

    # -- one poll -------------------------------------------------------------

    def sample(self) -> tuple[Load | None, str | None]:
        """Read Apache once and give the reading to the controller."""
        try:
            load, error = self.meter.sample(), None
        except StatusError as exc:
            load, error = None, str(exc)
            self.metrics.status_failed()
        value = load.signal(self.conf.master.load_signal) if load is not None else None
        self.controller.observe(self.clock(), value, load.interval if load is not None else 0.0)
        if load is not None and load.rate is not None:
            self._requests += load.rate * load.interval
            self._span += load.interval
        return load, error

    def sample_between_polls(self) -> bool:
        """A sample between polls (adaptive policy); True when the load already calls for more slaves."""
        load, error = self.sample()
        if error:
            LOG.debug("Sample between polls failed: %s", error)
        return self.controller.wants_more(self.clock(), self.alive)

    def read_queue(self, messages: t.Sequence[t.Any]) -> bool:
        """The interruption queue's messages (``_sqs.Message``): remember what concerns our slaves.

        True when one calls for a poll now: a spot interruption warning or a
        rebalance recommendation for one of our slaves, or one of them
        stopping or shutting down (not one we terminated ourselves). Events
        about other instances and messages that are not EC2 events are
        logged and dropped; the caller deletes every message.
        """
        urgent = False
        now = self.clock()
        for message in messages:
            try:
                notice = parse(message.body)
            except Malformed as exc:
                LOG.warning("Interruption queue: message %s is not an EC2 event (%s): deleted", message.message_id, exc)
                continue
            iid = notice.instance_id
            if iid is None:
                LOG.debug("Interruption queue: %s: nothing to act on", describe(notice))
                continue
            if not self.fleet.ours(iid):
                LOG.debug("Interruption queue: %s: not one of our slaves, ignored", describe(notice))
                continue
            if notice.kind in (Kind.INTERRUPTION, Kind.REBALANCE):
                # EventBridge's time, not after ours: a slave launched after the notice is its replacement.
                at = min(notice.at, now) if notice.at is not None else now
                self.fleet.warned(iid, at, interrupted=notice.kind is Kind.INTERRUPTION)
            if notice.urgent and iid not in self.fleet.terminated:
                LOG.warning("Interruption queue: %s: acting now", describe(notice))
                urgent = True
            else:
                LOG.debug("Interruption queue: %s: nothing to hurry for", describe(notice))
        return urgent

    def join_ready(self) -> bool:
        """Between polls: publish slaves that became ready since the last look. True when the farm grew.

        A slave found down meanwhile leaves the farm too (as at a poll); everything else waits for the poll.
        """
        if self.dry_run:
            return False
        before = self.fleet.last
        fleet = self.fleet.join(self.clock())
        if fleet is None:
            return False
        if not (fleet.gained or fleet.lost):
            self._tell(ev.vanished_events(before, fleet, self.ours, (), self.clock()))
            return False
        self._log_slow(fleet)
        renderers = fleet.renderers(self.settings.ports, excluding=self.draining)
        left = self._farm_changed(fleet, None, renderers, self.publish(renderers))
        self._tell(ev.vanished_events(before, fleet, self.ours, left, self.clock()))
        return bool(fleet.gained)

    def poll(self, load: Load | None = None, load_error: str | None = None, *, sampled: bool = False) -> PollReport:
        """Run one poll. ``load`` may be passed in by a caller that sampled already."""
        started = time.perf_counter()
        if not sampled:
            load, load_error = self.sample()
        now = self.clock()
        errors: list[str] = []
        signal_name = self.conf.master.load_signal
        value = load.signal(signal_name) if load is not None else None
        if load_error:
            errors.append(load_error)
            LOG.warning("Cannot read the load from Apache (%s): holding the fleet as it is", load_error)

        before = self.fleet.last
        fleet = self.fleet.observe(now)
        self._log_slow(fleet)
        alive = dec.alive(dec.counted(fleet, self.draining))
        decision = self.controller.decide(now, alive)
        market = dec.Market(spot_price=self.spot_price(), spot_failures=self.spot_failures)
        actions = dec.decide(fleet, decision.band, self.settings, now, self.draining, market)
        self._log_cap(actions)
        launched: list[str] = []
        if self.dry_run:
            self.draining = dict(actions.kept)
        else:
            # Out of the render farm first, then terminate: GBrowse never calls a dying slave.
            # A farm that cannot be published is held as it is: a launched slave would only
            # bill, and one terminated might still be in the renderfarm.conf GBrowse reads.
            published = self.publish(actions.renderers, launching=bool(actions.launch))
            if published is not None:
                errors.append(t.cast(str, self.publish_error))
                actions = actions.hold()
            left = self._farm_changed(fleet, actions, actions.renderers, published)
            self._tell(ev.vanished_events(before, fleet, self.ours, left, now))
            self.draining = dict(actions.draining)
            self._act(fleet, actions)
            if actions.launch:
                launched = self._launch(actions.launch, errors, actions.lifecycle)
                self._tell(ev.launch_events(launched, actions, now))
            self.ours &= {i.id for i in fleet.instances} | set(actions.terminate)

        self.alive = actions.plan.current - len(actions.plan.remove) + len(launched)
        report = PollReport(
            load=decision.estimate if decision.estimate is not None else value,
            load_signal=signal_name,
            req_per_sec=load.req_per_sec if load else None,
            busy_workers=load.busy_workers if load else None,
            idle_workers=load.idle_workers if load else None,
            band=decision.band,
            held=decision.held,
            fleet=described(fleet, gone=actions.terminate),
            counts=dec.counts(actions.slaves),
            plan=actions.plan,
            expired=list(actions.expired),
            renderers=list(actions.renderers),
            launched=launched,
            errors=errors,
            dry_run=self.dry_run,
            publish_error=None if self.dry_run else self.publish_error,
            at=now,
            generation=self.settings.generation,
            stale=list(actions.stale),
            refresh=list(actions.refresh),
            refresh_launch=actions.refresh_launch,
            why=decision.why,
            measured=load.rate if load else None,
            requests=round(self._requests) if self._span else None,
            seconds=self._span,
            events=[e.as_dict() for e in self._events],
            cap_spend=actions.spend,
            capped=actions.capped,
            lifecycle=actions.lifecycle,
            on_demand=len(fleet.on_demand & {s.id for s in actions.slaves if s.state is not dec.SlaveState.GOING}),
            spot_failures=self.spot_failures,
            interrupted=list(actions.interrupted),
            retired=list(actions.retired),
        )
        self._events, self._requests, self._span = [], 0.0, 0.0
        # Every poll is in STATUS= (systemctl status); the log gets it at verbosity 3,
        # and what changed (ready, lost, launched, terminated) at 2.
        LOG.debug(report.status_line())
        self.metrics.poll(report, seconds=time.perf_counter() - started, spot_bid=self.conf.slave.spot_bid)
        return report

    def spot_price(self) -> float | None:
        """The highest current spot price among ``instance_type`` in the slaves' zone, for max_hourly_spend
        (asked only with a cap; cached 10 minutes by the adapter). None: unknown, spot_bid counts."""
        if self.conf.master.max_hourly_spend is None:
            return None
        slave = self.conf.slave
        try:
            if slave.availability_zone:
                zones: tuple[str, ...] = (slave.availability_zone,)
            elif slave.subnet:
                zone = self.ec2.subnet_zone(slave.subnet)
                zones = (zone,) if zone else ()
            elif self.master.on_ec2 and self.master.availability_zone:
                zones = (self.master.availability_zone,)  # the slaves go to the master's subnet
            else:
                zones = ()
            return self.ec2.spot_price(slave.instance_types, zones)
        except EC2Error as exc:
            LOG.warning("Cannot read the spot price (%s): counting each spot slave at spot_bid %s", exc, slave.spot_bid)
            return None

    def _log_cap(self, actions: dec.Actions) -> None:
        """Log once when max_hourly_spend starts withholding launches, once when it no longer does."""
        binding = actions.capped > 0
        if binding and not self.cap_binding:
            LOG.warning(
                "max_hourly_spend %s USD/hour reached: %d slave(s) not launched (the fleet costs %.4f USD/hour)",
                self.conf.master.max_hourly_spend,
                actions.capped,
                actions.spend or 0.0,
            )
        elif self.cap_binding and not binding:
            LOG.info("max_hourly_spend no longer limits the fleet")
        self.cap_binding = binding

    def _log_slow(self, fleet: dec.FleetSnapshot) -> None:
        for iid, missed in fleet.slow:
            LOG.warning(
                "Slave %s at %s is slow to answer (%d of %d checks in a row): kept in the render farm",
                iid,
                fleet.addresses[iid],
                missed,
                self.conf.slave.ready_misses,
            )

    # -- telling what happened to each slave ----------------------------------

    def _tell(self, events: t.Iterable[ev.SlaveEvent]) -> None:
        """One log line per slave event; kept for the poll's report and for status."""
        for event in events:
            (LOG.warning if event.unexpected else LOG.info)("%s", event.line())
            self.recent.append(event)
            self._events.append(event)
            self.metrics.event(event)

    def _farm_changed(
        self,
        fleet: dec.FleetSnapshot,
        actions: dec.Actions | None,
        renderers: t.Sequence[str],
        publish_error: str | None,
        left_because: str | None = None,
    ) -> set[str]:
        """After a publish: tell who joined and who left the farm, and why. Returns the ids that left."""
        if publish_error is not None:
            return set()  # renderfarm.conf is as it was
        farm = ev.farm_ids(fleet, renderers)
        events = ev.farm_events(
            self.farm, farm, fleet, actions, self.clock(), self.conf.slave.drain_time, left_because
        )
        self.farm = farm
        self._tell(events)
        return {e.id for e in events if e.what == ev.LEFT}

    # -- acting -------------------------------------------------------------

    def _act(self, fleet: dec.FleetSnapshot, actions: dec.Actions) -> None:
        """Terminate what goes (the render farm no longer lists it; the drains started with the publish)."""
        generations = {s.id: s.generation for s in fleet.slaves}
        for iid in actions.refresh:
            LOG.info(
                "Slave %s at %s has old data: replaced, data generation %s -> %s (%d with old data left)",
                iid,
                fleet.addresses.get(iid),
                generations.get(iid) or "untagged",
                self.settings.generation,
                len(actions.stale) - len(actions.refresh),
            )
        if actions.refresh_launch:
            LOG.info(
                "Launching %d slave(s) with data generation %s to replace %d with older data",
                actions.refresh_launch,
                self.settings.generation,
                len(actions.stale),
            )
        if actions.terminate:
            self._tell(ev.terminate_events(fleet, actions, self.clock(), self.conf.slave.ready_timeout))
            self.ours.update(actions.terminate)
            self.ec2.terminate(actions.terminate)
            self.fleet.terminated_now(actions.terminate, self.clock())

    def launch_spec(self) -> LaunchSpec:
        """Built once (and after SIGHUP): image lookup, security group, subnet."""
        if self._spec is None:
            self._spec = build_launch_spec(self.conf, self.ec2, self.master, self.ssh_key, self.databases)
        return self._spec

    def _launch(self, count: int, errors: list[str], lifecycle: str = dec.SPOT) -> list[str]:
        on_demand = lifecycle == dec.ON_DEMAND
        try:
            spec = self.launch_spec()
            if on_demand:
                LOG.warning(
                    "No spot capacity for %d poll(s) in a row (on_demand_fallback): launching %d on-demand slave(s)",
                    self.spot_failures,
                    count,
                )
                result = self.ec2.launch(count, spec, on_demand_price=self.conf.slave.on_demand_price)
            else:
                result = self.ec2.launch(count, spec)
        except CapacityError as exc:
            # No capacity at our price: nothing stays open, try again next poll.
            if not on_demand:
                self.spot_failures += 1
            kind = "on-demand" if on_demand else "spot"
            LOG.warning("No %s capacity for %d slave(s) (%s): will retry next poll", kind, count, exc)
            errors.append(str(exc))
            return []
        except EC2Error as exc:
            LOG.error("Could not launch %d slave(s): %s", count, exc)
            errors.append(str(exc))
            if exc.stale_reference:
                # Something we resolved once is gone: resolve it again next poll.
                self._spec = None
                self.ec2.forget()
            return []
        finally:
            # Housekeeping the launch did on the way (pruning old template versions) that failed.
            warnings = getattr(self.ec2, "warnings", [])
            for warning in warnings:
                LOG.warning("%s", warning)
            warnings.clear()
        for code, message in result.errors:
            LOG.warning("Launch partly failed: %s: %s", code, message)
            errors.append(f"{code}: {message}")
        if result.instance_ids:
            self.fleet.launched_now(
                result.instance_ids, self.clock(), self.settings.generation, on_demand=on_demand
            )
            if not on_demand and self.spot_failures:
                LOG.info("Spot capacity is back after %d poll(s) without", self.spot_failures)
                self.spot_failures = 0
        return list(result.instance_ids)

    def publish(self, renderers: t.Sequence[str], launching: bool = False) -> str | None:
        """Make GBrowse use ``renderers``: rewrite renderfarm.conf when the set changed, then reload.

        Returns None when GBrowse has them, else why not (also kept in
        ``publish_error``, logged when it starts, changes and ends). A failed
        reload is retried every poll until it succeeds. Before a launch
        (``launching``) an unchanged file is checked too: a slave that could
        never be published would only be billed.
        """
        path = self.conf.resolved_renderfarm_conf(self.gbrowse_conf_dir)
        error = None
        try:
            if write_renderfarm(path, renderers):
                LOG.info("Render farm now: %s", " ".join(renderers) or "(empty)")
                self._reload_due = True
            elif launching:
                problem = writable_directory(path)
                error = None if problem is None else f"cannot write {path}: {problem}"
        except (OSError, ValueError) as exc:
            error = f"cannot write {path}: {exc}"
        if error is None and self._reload_due:
            error = self.reload_apache(self.conf.master.reload_command)
            self._reload_due = error is not None
        if error != self.publish_error:
            if error:
                LOG.error("Cannot publish the render farm (%s): holding the fleet, no launches or terminations", error)
            else:
                LOG.info("The render farm is published again: the fleet follows the load again")
        self.publish_error = error
        return error

    def shutdown(self, wait: float = 600.0) -> None:
        """SIGTERM: by default empty the farm, terminate the fleet, delete what we made."""
        if self.dry_run:
            return
        if self.conf.master.on_exit == "keep":
            LOG.info("on_exit = keep: leaving the fleet running for the next balancer")
            return
        LOG.info("Shutting down: emptying the render farm and terminating the slaves")
        last = self.fleet.last or dec.FleetSnapshot()
        self._farm_changed(last, None, (), self.publish([]), left_because="shutdown")
        if self.publish_error is not None:
            LOG.warning("Terminating the slaves anyway: GBrowse lists them until renderfarm.conf can be rewritten")
        left = teardown(self.ec2, wait, on_terminate=self._terminated_at_shutdown)
        if left:
            LOG.error("Slaves still shutting down after %.0f s: %s", wait, " ".join(left))
        LOG.info("Normal termination")

    def _terminated_at_shutdown(self, instances: list[Instance]) -> None:
        told = {e.id for e in self.recent if e.what == ev.TERMINATED and e.reason == "shutdown"}
        addresses = self.fleet.last.addresses if self.fleet.last else {}
        self._tell(
            ev.SlaveEvent(i.id, addresses.get(i.id) or i.private_ip, ev.TERMINATED, "shutdown", self.clock())
            for i in instances
            if i.id not in told
        )
        self.ours.update(i.id for i in instances)

    # -- what status and the history read ---------------------------------------

    def note_error(self, message: str) -> None:
        """An error for status's recent errors (the poll's own errors are noted by record())."""
        self.recent_errors.append((self.clock(), message))

    def state(self, phase: str, report: PollReport | None, last_errors: t.Sequence[str] = ()) -> dict[str, t.Any]:
        """The state file's contents: the balancer's view now (see _state)."""
        now = self.clock()
        fleet = self.fleet.last or dec.FleetSnapshot()
        states = {s.id: s.state.value for s in dec.counted(fleet, self.draining)}
        slaves = _state.slave_rows(fleet.instances, states, fleet.addresses, self.farm, now)
        self.spend.update(now, *_state.spend_rate(slaves, self.conf.slave.spot_bid))
        return {
            "version": _state.VERSION,
            **self.identity,
            "pid": os.getpid(),
            "phase": phase,
            "time": now,
            "poll_time": report.at if report else None,
            "started": self.started,
            "poll_interval": self.conf.master.poll_interval * 60,
            "dry_run": self.dry_run,
            "load": {
                "value": report.load if report else None,
                "signal": self.conf.master.load_signal,
                "measured": report.measured if report else None,
                "apache_lifetime": report.req_per_sec if report else None,
                "busy_workers": report.busy_workers if report else None,
                "idle_workers": report.idle_workers if report else None,
            },
            "band": {
                "min": report.band.min if report else None,
                "max": report.band.max if report else None,
                "held": report.held if report else False,
                "why": report.why if report else "",
            },
            "holding": self.publish_error,
            "slaves": slaves,
            "actions": [e.as_dict() for e in self.recent],
            "errors": [{"time": at, "message": message} for at, message in self.recent_errors],
            "last_errors": list(last_errors),
            "spend": self.spend.as_dict(),
        }

    def record(self, phase: str, report: PollReport | None = None, failed: str | None = None) -> None:
        """Rewrite the state file and add the poll's line to the history; a failure is logged when it changes.

        ``failed``: the poll failed with this error (the view is the last poll's).
        """
        if report is not None:
            self._last = report
            for error in report.errors:
                self.note_error(error)
        if failed is not None:
            self.note_error(failed)
        problems = []
        if self.state_file is not None:
            last_errors = [failed] if failed else (report.errors if report else [])
            try:
                _state.write_state(self.state_file, self.state(phase, self._last, last_errors))
            except OSError as exc:
                problems.append(f"state file: {exc.strerror or exc}")
        if self.history is not None and report is not None:
            try:
                self.history.append(report.as_dict())
            except OSError as exc:
                problems.append(f"history {self.history.path}: {exc.strerror or exc}")
        problem = "; ".join(problems) or None
        if problem != self._record_error:
            if problem:
                LOG.warning("Cannot record the balancer's state (%s): status and the history miss it", problem)
            else:
                LOG.info("The balancer's state is recorded again")
        self._record_error = problem


def run_reload_command(command: str) -> str | None:
    """Reload Apache gracefully (shell words, no shell); None when it worked (or there is none), else why not.

    An empty command is no reload: CGI GBrowse re-reads renderfarm.conf on every request.
    """
    import shlex
    import subprocess

    if not command.strip():
        return None
    try:
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"reload command {command!r} failed: {exc}"
    if result.returncode != 0:
        return f"reload command {command!r} exited {result.returncode}: {result.stderr.strip()[:500]}"
    return None


def conf_identity(path: str) -> tuple[int, ...] | None:
    """What tells that the conf file changed: device, inode, size, modification time; None when it cannot be stat'ed.

    An atomic replace (balancer_conf, the sync) changes the inode; an edit in
    place, the size or the time. Cheap enough to check before every poll.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def run(
    balancer: Balancer,
    *,
    signals: Signals,
    notifier: Notifier,
    reload_conf: t.Callable[[], BalancerConf | None],
    on_report: t.Callable[[PollReport], None] | None = None,
    monotonic: t.Callable[[], float] = time.monotonic,
    queue: t.Any = None,
) -> int:
    """The loop: ``while not stop: poll(); sleep until the next poll (pinging the watchdog)``.

    While slaves are on their way to ready they are checked every
    JOIN_INTERVAL seconds in between, so one that answers joins the render
    farm within seconds.

    With the adaptive policy Apache is also sampled every SAMPLE_INTERVAL
    seconds in between (one status read), and a load that already calls for
    more slaves polls at once instead of waiting for the next poll.

    With an interruption queue (``queue``: a started ``_sqs.QueueWatcher``,
    which wakes the loop through the self-pipe when messages arrive) a
    notice about one of our slaves polls at once too, and so does a
    replacement becoming ready while a slave at risk waits for it.
    """
    notifier.send("READY=1", "STATUS=Taking a baseline sample of the load")
    balancer.sample()  # baseline: the first rate needs two readings
    balancer.record("starting")
    next_poll = monotonic() + balancer.conf.master.poll_interval * 60
    next_sample = next_join = monotonic() + SAMPLE_INTERVAL
    watched = conf_identity(balancer.conf.path)

    def reload() -> None:
        nonlocal next_poll, watched
        watched = conf_identity(balancer.conf.path)
        notifier.send("RELOADING=1", f"MONOTONIC_USEC={int(monotonic() * 1_000_000)}")
        conf = reload_conf()
        if conf is not None and balancer.replace_conf(conf):
            balancer.sample()
            next_poll = monotonic() + conf.master.poll_interval * 60
        notifier.send("READY=1")

    while True:
        early = False
        while not signals.stop:
            if signals.reload:
                signals.reload = False
                reload()
            if queue is not None:
                messages = queue.take()
                if messages:
                    urgent = balancer.read_queue(messages)
                    queue.done(messages)  # remembered in the fleet view: the next poll acts on it
                    if urgent:
                        early = True
                        break
            remaining = next_poll - monotonic()
            if remaining <= 0:
                break
            if balancer.fleet.waiting() and not balancer.dry_run and remaining > CHECK_TIMEOUT:
                if next_join <= monotonic():  # (a check never runs into the poll it would delay)
                    next_join = monotonic() + JOIN_INTERVAL
                    if balancer.join_ready() and balancer.fleet.at_risk:
                        early = True  # a replacement is ready: retire the slave at risk now
                        break
                    continue
                remaining = min(remaining, next_join - monotonic())
            if balancer.controller.policy.samples_between_polls:
                if next_sample <= monotonic():
                    next_sample = monotonic() + SAMPLE_INTERVAL
                    if balancer.sample_between_polls():
                        early = True
                        break
                    continue
                remaining = min(remaining, next_sample - monotonic())
            step = remaining if notifier.watchdog_interval is None else min(remaining, notifier.watchdog_interval)
            signals.wait(step)
            notifier.send("WATCHDOG=1")
        if signals.stop:
            break
        if not early:
            next_poll += balancer.conf.master.poll_interval * 60
        if conf_identity(balancer.conf.path) != watched:
            # Edited without a SIGHUP (a sync's playbook cannot signal a balancer started by
            # hand): reloaded as on SIGHUP, once per change, so new data reaches the farm anyway.
            LOG.info("%s changed: reloading it", balancer.conf.path)
            reload()
        next_sample = monotonic() + SAMPLE_INTERVAL
        try:
            report = balancer.poll()
        except EC2Error as exc:
            LOG.error("Poll failed: %s (the fleet is unchanged; trying again next poll)", exc)
            balancer.metrics.poll_failed()
            notifier.send(f"STATUS=Poll failed: {exc}", "WATCHDOG=1")
            balancer.record("running", failed=f"Poll failed: {exc}")
            continue
        balancer.record("running", report)
        if on_report is not None:
            on_report(report)
        notifier.send(f"STATUS={report.status_line()}", "WATCHDOG=1")
        if next_poll < monotonic():  # a slow poll: do not try to catch up in a burst
            next_poll = monotonic() + balancer.conf.master.poll_interval * 60
    if queue is not None:
        queue.stop()
    notifier.send("STOPPING=1", "STATUS=Cleaning up")
    LOG.info("Termination signal received")
    balancer.record("stopping")
    try:
        balancer.shutdown()
    except EC2Error as exc:
        LOG.error("Cleanup failed: %s", exc)
        balancer.record("stopped", failed=f"Cleanup failed: {exc}")
        return 1
    balancer.record("stopped")
    return 0
