# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The poll's bookkeeping with fakes for EC2, Apache and the readiness check.

The real parts are exercised in tests/system/test_balancer.py; these cover
orderings and corner cases that are hard to provoke there.
"""

from __future__ import annotations

import json
import os
import socket
import typing as t
from dataclasses import dataclass, field

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import normalize_argv
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import Balancer, Notifier
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import DESCRIBE_WHILE_PENDING, LAUNCH_GRACE
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import GENERATION_TAG, Instance, LaunchResult
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import Master
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._readiness import Probe
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import StatusError


def _probe(answer: bool | Probe) -> Probe:
    if isinstance(answer, Probe):
        return answer
    return Probe.READY if answer else Probe.DOWN


CONF = """[LOAD TABLE]
0    0 0
10   2 3
[MASTER]
renderfarm_conf = {farm}
reload_command = true
scaling_policy = {policy}
[SLAVE]
image_id = ami-12345678
ports = 8101 8102
ready_timeout = 1
drain_time = {drain}
"""


@dataclass
class FakeLoad:
    rate: float | None
    req_per_sec: float | None = 1.0
    busy_workers: int | None = 1
    idle_workers: int | None = 9
    interval: float = 30.0

    def signal(self, name: str) -> float | None:
        return self.rate


@dataclass
class FakeMeter:
    rates: list[t.Any]

    def sample(self) -> FakeLoad:
        rate = self.rates.pop(0)
        if isinstance(rate, Exception):
            raise rate
        return FakeLoad(rate)


@dataclass
class FakeEC2:
    """Describe shows ``visible``; launches are remembered but appear only when ``reveal()`` is called."""

    visible: list[Instance] = field(default_factory=list)
    hidden: list[Instance] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    launches: list[int] = field(default_factory=list)
    n: int = 0
    generation: str | None = None  # what the launch template tags its slaves with (GENERATION_TAG)

    def describe_fleet(self) -> list[Instance]:
        return list(self.visible)

    def launch(self, count: int, spec: t.Any) -> LaunchResult:
        self.launches.append(count)
        ids = []
        for dummy in range(count):
            self.n += 1
            iid = f"i-{self.n:04d}"
            ids.append(iid)
            tags = {GENERATION_TAG: self.generation} if self.generation else {}
            self.hidden.append(Instance(iid, "running", 1090.0 + self.n, f"127.100.1.{self.n}", None, "vpc-1", "subnet-1", "m5.large", "spot", tags))
        return LaunchResult(tuple(ids))

    def reveal(self) -> None:
        self.visible += self.hidden
        self.hidden = []

    def terminate(self, ids: t.Iterable[str]) -> list[str]:
        ids = [i for i in ids if any(v.id == i for v in self.visible)]
        self.terminated += ids
        self.visible = [v for v in self.visible if v.id not in ids]
        return ids


@pytest.fixture
def make(tmp_path):
    def build(rates, ready=lambda address: True, clock=None, policy="immediate", drain=0):
        conf = parse_conf(CONF.format(farm=tmp_path / "farm" / "renderfarm.conf", policy=policy, drain=drain), "test.conf")
        (tmp_path / "farm").mkdir(exist_ok=True)
        ec2 = FakeEC2(generation=conf.poll_settings().generation)
        now = [1100.0]
        bal = Balancer(
            conf,
            ec2=ec2,  # type: ignore[arg-type]
            meter=FakeMeter(list(rates)),  # type: ignore[arg-type]
            master=Master(),
            clock=clock or (lambda: now[0]),
            check=lambda targets, port, timeout: {i: _probe(ready(a)) for i, a in targets.items()},
            reload=lambda command: reloads.append(command) or reload_error[0],
        )
        bal._spec = object()  # type: ignore[assignment]  # no image lookup in unit tests
        bal.reloads, bal.reload_error = reloads, reload_error  # type: ignore[attr-defined]
        return bal, ec2, now

    reloads: list[str] = []
    reload_error: list[str | None] = [None]

    return build


def test_launch_not_yet_described_is_not_launched_twice(make):
    bal, ec2, now = make([20, 20, 20])
    first = bal.poll()
    assert first.plan.launch == 2 and ec2.launches == [2]
    now[0] += 30
    second = bal.poll()  # EC2 has not caught up: the two still count as pending
    assert second.plan.launch == 0 and second.counts["pending"] == 2
    ec2.reveal()
    now[0] += 30
    third = bal.poll()
    assert third.plan.launch == 0 and third.counts["ready"] == 2
    assert ec2.launches == [2]


def test_grace_expires(make):
    bal, ec2, now = make([20, 20])
    bal.poll()
    now[0] += LAUNCH_GRACE + 1  # never showed up: gone for good, launch again
    assert bal.poll().plan.launch == 2


def test_missing_load_holds_the_fleet(make):
    bal, ec2, now = make([20, 20, StatusError("http://x/server-status?auto: connection refused"), 0])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2
    now[0] += 30
    held = bal.poll()
    assert held.held and held.plan.idle and held.load is None
    assert (held.band.min, held.band.max) == (2, 3)
    assert held.errors and "connection refused" in held.errors[0]
    now[0] += 30
    assert bal.poll().plan.remove  # with a real figure again, scale-in proceeds


def test_adaptive_policy_rises_at_once_and_keeps_the_fleet_through_a_quiet_poll(make):
    bal, ec2, now = make([20, 20, 0, 0], policy="adaptive")
    first = bal.poll()
    assert first.plan.launch == 2 and first.load == 20
    ec2.reveal()
    now[0] += 30
    bal.poll()
    now[0] += 30
    quiet = bal.poll()  # the last minute averages 10 req/s: still the 2-3 row
    assert quiet.plan.idle and quiet.band.min == 2 and quiet.load == pytest.approx(10)
    now[0] += 30
    assert bal.poll().plan.idle  # 0 req/s for a minute: kept within the hold window


def test_renderfarm_lists_every_port_and_drops_removed_first(make, tmp_path):
    bal, ec2, now = make([20, 20, 0])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    report = bal.poll()
    assert report.renderers == [
        "http://127.100.1.1:8101", "http://127.100.1.1:8102", "http://127.100.1.2:8101", "http://127.100.1.2:8102",
    ]
    text = (tmp_path / "farm" / "renderfarm.conf").read_text()
    assert "renderfarm = 1" in text and "127.100.1.2:8102" in text
    now[0] += 30
    down = bal.poll()
    assert down.renderers == [] and sorted(down.plan.remove) == ["i-0001", "i-0002"]
    assert "renderfarm = 0" in (tmp_path / "farm" / "renderfarm.conf").read_text()
    assert sorted(ec2.terminated) == ["i-0001", "i-0002"]


def test_scaled_in_ready_slaves_drain_before_they_are_terminated(make, tmp_path):
    """Out of renderfarm.conf at once, terminated drain_time later; not counted, not planned again meanwhile."""
    bal, ec2, now = make([20, 20, 0, 0, 20, 0], drain=45)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2
    now[0] += 30
    down = bal.poll()
    assert down.renderers == [] and sorted(down.plan.remove) == ["i-0001", "i-0002"]
    assert "renderfarm = 0" in (tmp_path / "farm" / "renderfarm.conf").read_text()
    assert ec2.terminated == [] and sorted(bal.draining) == ["i-0001", "i-0002"]
    now[0] += 30  # 30 s into the drain: still up, not in the farm, not removed twice
    still = bal.poll()
    assert ec2.terminated == [] and still.renderers == [] and still.plan.remove == () and still.counts["going"] == 2
    now[0] += 30  # load is back: new slaves are launched, the draining ones are not taken back
    back = bal.poll()
    assert back.plan.launch == 2 and sorted(ec2.terminated) == ["i-0001", "i-0002"] and bal.draining == {}
    ec2.reveal()
    now[0] += 30
    assert bal.poll().plan.remove == ("i-0004", "i-0003")  # 0 req/s again: these drain in turn
    assert sorted(ec2.terminated) == ["i-0001", "i-0002"]


def test_draining_slave_that_vanished_is_forgotten(make):
    bal, ec2, now = make([20, 20, 0, 0], drain=600)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    now[0] += 30
    bal.poll()
    assert sorted(bal.draining) == ["i-0001", "i-0002"]
    ec2.visible = [v for v in ec2.visible if v.id != "i-0001"]  # reclaimed while draining
    now[0] += 30
    bal.poll()
    assert sorted(bal.draining) == ["i-0002"] and ec2.terminated == []


def test_slave_never_ready_is_replaced_after_ready_timeout(make):
    bal, ec2, now = make([20] * 4, ready=lambda address: False)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["booting"] == 2
    now[0] += 61  # ready_timeout = 1 minute since launch
    report = bal.poll()
    assert sorted(report.expired) == ["i-0001", "i-0002"]
    assert report.plan.launch == 2 and report.renderers == []
    assert sorted(ec2.terminated) == ["i-0001", "i-0002"]


def test_dry_run_changes_nothing(make, tmp_path):
    bal, ec2, now = make([20])
    bal.dry_run = True
    report = bal.poll()
    assert report.plan.launch == 2 and ec2.launches == [] and not (tmp_path / "farm" / "renderfarm.conf").exists()


def test_unpublishable_farm_holds_the_fleet(make, tmp_path):
    """renderfarm.conf's directory gone: no launches, no terminations, and the report says why."""
    bal, ec2, now = make([20, 20, 0, 0, 0])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2 and bal.publish_error is None
    farm = tmp_path / "farm"
    published = (farm / "renderfarm.conf").read_text()
    assert "127.100.1.2:8102" in published
    (farm / "renderfarm.conf").unlink()
    farm.rmdir()
    farm.write_text("a file where the directory was")
    now[0] += 30
    held = bal.poll()  # the load fell to 0: scale-in would remove both
    assert held.plan.idle and ec2.terminated == [] and held.launched == []
    assert held.publish_error and "cannot write" in held.publish_error and held.errors == [held.publish_error]
    assert "HOLDING the fleet" in held.status_line() and held.as_dict()["publish_error"] == held.publish_error
    farm.unlink()
    farm.mkdir()
    (farm / "renderfarm.conf").write_text(published)  # what GBrowse still had
    now[0] += 30
    resumed = bal.poll()
    assert resumed.publish_error is None and sorted(ec2.terminated) == ["i-0001", "i-0002"]
    assert "renderfarm = 0" in (farm / "renderfarm.conf").read_text()


def test_no_launch_into_a_farm_that_could_not_be_published(make, tmp_path):
    """Nothing to rewrite yet, but a launch would need it: the directory is checked first."""
    bal, ec2, now = make([20, 20])
    (tmp_path / "farm").rmdir()
    (tmp_path / "farm").write_text("not a directory")
    held = bal.poll()
    assert ec2.launches == [] and held.plan.launch == 0 and str(held.publish_error).startswith("cannot write")
    (tmp_path / "farm").unlink()
    (tmp_path / "farm").mkdir()
    now[0] += 30
    assert bal.poll().publish_error is None and ec2.launches == [2]


def test_failed_reload_holds_until_a_reload_succeeds(make, tmp_path):
    bal, ec2, now = make([20, 20, 20, 20])
    (tmp_path / "farm" / "renderfarm.conf").write_text("[GENERAL]\nrenderfarm = 1\nremote renderer = http://gone:8101\n")
    bal.reload_error[0] = "reload command 'apache2ctl graceful' exited 1: no Apache"
    first = bal.poll()  # a stale farm: rewritten (emptied), but the reload fails
    assert first.publish_error == bal.reload_error[0] and first.launched == [] and ec2.launches == []
    now[0] += 30
    again = bal.poll()  # unchanged file, but the reload is still due
    assert len(bal.reloads) == 2 and again.launched == []
    bal.reload_error[0] = None
    now[0] += 30
    ok = bal.poll()
    assert ok.publish_error is None and ec2.launches == [2] and len(bal.reloads) == 3
    now[0] += 30
    bal.poll()
    assert len(bal.reloads) == 3  # nothing changed, nothing due: no reload


def test_slow_ready_slave_stays_for_ready_misses_polls(make):
    """Slow (timeout) slaves keep their place for ready_misses - 1 polls; one that refuses leaves at once."""
    answers = {"127.100.1.1": Probe.READY, "127.100.1.2": Probe.READY}
    bal, ec2, now = make([20] * 6, ready=lambda address: answers[address])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2
    answers["127.100.1.1"] = Probe.SLOW
    answers["127.100.1.2"] = Probe.DOWN
    seen = []
    for dummy in range(3):
        now[0] += 30
        report = bal.poll()
        seen.append(sorted(url.split(":")[1][2:] for url in report.renderers if url.endswith(":8101")))
    assert seen == [["127.100.1.1"], ["127.100.1.1"], []]  # ready_misses = 3 (default)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-conf", "x.conf"], ["--conf", "x.conf"]),
        (["-c", "x.conf", "-v", "3"], ["--conf", "x.conf", "--verbosity", "3"]),
        (["--conf=x.conf", "-background"], ["--conf=x.conf", "--background"]),
        (["--dry_run", "--check_config"], ["--dry-run", "--check-config"]),
        (["-ssh_key", "mykey"], ["--ssh_key", "mykey"]),
        (["--", "-conf"], ["--", "-conf"]),
        (["-zzz"], ["-zzz"]),  # not one of ours: argparse rejects it as given
    ],
)
def test_original_spellings(argv: list[str], expected: list[str]) -> None:
    assert normalize_argv(argv) == expected


def test_notifier_speaks_sd_notify(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
        assert n.enabled and n.watchdog_interval == 5.0
        n.send("READY=1", "STATUS=hello")
        assert sock.recv(100) == b"READY=1\nSTATUS=hello"
    assert not Notifier({}).enabled
    assert Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_a_slave_that_answers_joins_between_polls(make, tmp_path):
    """Booting at the poll, answering seconds later: published by join_ready(), not at the next poll."""
    answering: set[str] = set()
    bal, ec2, now = make([20, 20, 20], ready=lambda address: address in answering)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["booting"] == 2 and bal.fleet.waiting()
    assert not bal.join_ready()  # nobody answers yet: nothing published, nothing logged
    answering.add("127.100.1.2")
    now[0] += 3
    assert bal.join_ready()
    text = (tmp_path / "farm" / "renderfarm.conf").read_text()
    assert "127.100.1.2:8101" in text and "127.100.1.1" not in text
    assert bal.reloads[-1] == "true"  # GBrowse was told
    assert bal.fleet.waiting()  # i-0001 still boots
    answering.add("127.100.1.1")
    now[0] += 3
    assert bal.join_ready() and not bal.fleet.waiting()
    now[0] += 24
    report = bal.poll()  # the poll counts both ready; neither is "gained" twice
    assert report.counts["ready"] == 2 and len(report.renderers) == 4


def test_join_does_not_bring_back_what_the_poll_terminated(make, tmp_path):
    answering: set[str] = set()
    bal, ec2, now = make([20, 20, 0], ready=lambda address: address in answering)
    bal.poll()
    ec2.reveal()
    now[0] += 10
    bal.poll()
    now[0] += 10
    down = bal.poll()  # load 0: both booting slaves terminated at once
    assert sorted(down.plan.remove) == ["i-0001", "i-0002"] and not bal.fleet.waiting()
    answering.update({"127.100.1.1", "127.100.1.2"})
    assert not bal.join_ready()
    farm = tmp_path / "farm" / "renderfarm.conf"
    assert not farm.exists() or "127.100.1" not in farm.read_text()


def test_terminated_slave_still_described_as_running_is_not_counted(make):
    """EC2 may show a terminated instance as running for a while: it counts as going, is not checked or listed."""
    bal, ec2, now = make([20, 20, 0, 0])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    kept = list(ec2.visible)
    now[0] += 30
    bal.poll()  # scale-in terminates both
    ec2.visible = kept  # ... but the next DescribeInstances still shows them running
    now[0] += 30
    report = bal.poll()
    assert report.counts["going"] == 2 and report.counts["ready"] == 0 and report.renderers == []
    assert report.plan.idle


def test_a_launched_slave_is_described_between_polls_and_joins(make, tmp_path):
    """Launched at a poll, not yet described: the fleet is described again between polls (not more
    often than DESCRIBE_WHILE_PENDING), and the slave joins as soon as it answers."""
    bal, ec2, now = make([20])
    bal.poll()
    assert bal.fleet.waiting()
    ec2.reveal()
    now[0] += DESCRIBE_WHILE_PENDING / 2
    assert not bal.join_ready()  # too soon to describe again: the launched slaves have no address yet
    now[0] += DESCRIBE_WHILE_PENDING / 2
    assert bal.join_ready()
    assert "127.100.1.1:8101" in (tmp_path / "farm" / "renderfarm.conf").read_text()
    assert not bal.fleet.waiting()


def test_slaves_with_old_data_are_replaced_launch_first_and_logged(make, caplog):
    """Two ready slaves tagged with an older generation, band 2-3: one fresh slave is launched; once it
    is ready the oldest stale one goes (one log line, old -> new); then the next, until all are fresh."""
    bal, ec2, now = make([20] * 8)
    new = bal.settings.generation
    ec2.visible = [
        Instance(f"i-old{n}", "running", 1000.0 + n, f"127.100.0.{n}", None, "vpc-1", "subnet-1", "m5.large", "spot", {GENERATION_TAG: "0ld0ld0ld0ld"})
        for n in (1, 2)
    ]
    caplog.set_level("INFO", logger="gbrowse_aws.balancer")
    first = bal.poll()
    assert (first.plan.launch, first.refresh_launch, first.stale) == (1, 1, ["i-old1", "i-old2"])
    assert first.as_dict()["generation"] == new and first.as_dict()["plan"]["refresh_launch"] == 1
    now[0] += 30
    assert bal.poll().plan.idle  # the fresh slave is on its way (not even described yet): wait
    ec2.reveal()
    now[0] += 30
    third = bal.poll()
    assert third.refresh == ["i-old1"] and ec2.terminated == ["i-old1"]
    assert len(third.renderers) == 2 * 2  # 2 slaves stay listed (2 ports each): never below min
    lines = [r.getMessage() for r in caplog.records if "has old data" in r.getMessage()]
    assert lines == [f"Slave i-old1 at 127.100.0.1 has old data: replaced, data generation 0ld0ld0ld0ld -> {new} (1 with old data left)"]
    for dummy in range(4):
        now[0] += 30
        ec2.reveal()
        bal.poll()
    assert ec2.terminated == ["i-old1", "i-old2"] and ec2.launches == [1, 1]
    assert {i.tags[GENERATION_TAG] for i in ec2.visible} == {new} and len(ec2.visible) == 2


def test_conf_identity_changes_with_a_replace_or_an_edit(tmp_path):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import conf_identity

    conf = tmp_path / "aws_balancer.conf"
    conf.write_text("a = 1\n")
    first = conf_identity(str(conf))
    assert first is not None and conf_identity(str(conf)) == first
    (tmp_path / "new").write_text("a = 1\n")
    os.replace(tmp_path / "new", conf)  # same content, another inode: as balancer_conf writes
    second = conf_identity(str(conf))
    assert second != first
    conf.write_text("a = 22\n")  # edited in place
    assert conf_identity(str(conf)) != second
    conf.unlink()
    assert conf_identity(str(conf)) is None


# -- what happened to each slave, the state file and the history ---------------------------------


@pytest.fixture
def log_lines():
    import logging

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import LOG

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.DEBUG)
    level = LOG.level
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG)
    yield lines
    LOG.removeHandler(handler)
    LOG.setLevel(level)


def naming(lines: list[str], iid: str) -> list[str]:
    return [line for line in lines if line.startswith(f"Slave {iid} ")]


def test_each_slave_event_is_one_line_with_its_reason(make, log_lines):
    """Launched, joined, reclaimed from the farm, vanished while booting, scaled in: one line each."""
    bal, ec2, now = make([20, 20, 20, 20, 0])
    bal.poll()
    assert naming(log_lines, "i-0001") == ["Slave i-0001 at (no address yet) launched: wanted 2-3, 0 counted"]
    ec2.reveal()
    now[0] += 30
    joined = bal.poll()
    assert naming(log_lines, "i-0002")[-1] == "Slave i-0002 at 127.100.1.2 joined the render farm: answered the readiness check"
    assert [e["event"] for e in joined.events] == ["joined", "joined"]
    ec2.visible = [v for v in ec2.visible if v.id != "i-0001"]  # reclaimed behind our back
    now[0] += 30
    bal.poll()
    assert naming(log_lines, "i-0001")[2:] == [
        "Slave i-0001 at 127.100.1.1 left the render farm: "
        "vanished: no longer described by EC2 (reclaimed, or terminated outside the balancer)"
    ]
    ec2.reveal()  # the replacement, i-0003
    now[0] += 30
    bal.poll()
    now[0] += 30
    down = bal.poll()
    assert naming(log_lines, "i-0002")[2:] == [
        "Slave i-0002 at 127.100.1.2 left the render farm: scale-in",
        "Slave i-0002 at 127.100.1.2 terminated: scale-in (wanted 0-0, 2 counted)",
    ]
    assert {(e["id"], e["event"]) for e in down.events} >= {("i-0002", "terminated"), ("i-0003", "terminated")}
    now[0] += 30
    ec2.visible = []  # what we terminated is gone: no "vanished" line for it
    bal.meter.rates.append(0)
    bal.poll()
    assert not [line for line in log_lines if "vanished" in line and "i-0001" not in line]


def test_a_booting_slave_that_vanished_is_named(make, log_lines):
    bal, ec2, now = make([20, 20], ready=lambda address: False)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    ec2.visible = [v for v in ec2.visible if v.id != "i-0002"]
    assert bal.join_ready() is False
    bal.fleet.looked = 0.0
    assert naming(log_lines, "i-0002")[1:] == []  # a join without a describe cannot tell
    bal.meter.rates.append(20)
    now[0] += 30
    bal.poll()
    assert naming(log_lines, "i-0002")[1:] == [
        "Slave i-0002 at 127.100.1.2 vanished: no longer described by EC2 (reclaimed, or terminated outside the balancer)"
    ]


def test_record_writes_the_state_file_and_the_history(make, tmp_path):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._history import JsonLines
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._state import check, read_state

    bal, ec2, now = make([20, 20, 20])
    bal.state_file = str(tmp_path / "state.json")
    bal.history = JsonLines(str(tmp_path / "history.jsonl"), max_bytes=10**6)
    bal.identity = {"balancer_id": "b-1", "conf": "test.conf", "host": "h"}
    bal.sample()  # the baseline (FakeMeter: 30 s at 20 req/s)
    bal.record("starting")
    assert read_state(bal.state_file)["phase"] == "starting"
    bal.record("running", bal.poll())
    ec2.reveal()
    now[0] += 3600
    report = bal.poll()
    bal.record("running", report)
    state = read_state(bal.state_file)
    assert check(state, now[0], lambda pid: True)[0] == 0
    assert (state["band"]["min"], state["band"]["max"]) == (2, 3) and "row at line 3" in state["band"]["why"]
    assert [(s["id"], s["slave_state"], s["in_farm"], s["type"]) for s in state["slaves"]] == [
        ("i-0001", "ready", True, "m5.large"), ("i-0002", "ready", True, "m5.large"),
    ]
    assert [a["event"] for a in state["actions"]] == ["launched", "launched", "joined", "joined"]
    assert state["spend"]["per_hour"] == pytest.approx(0.16) and state["spend"]["basis"] == "spot_bid"
    assert state["spend"]["since_start"] == pytest.approx(0.0)  # nothing ran in the hour before: now two bill
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [line["requests"] for line in lines] == [1200, 600]  # baseline+poll samples, then the poll's
    assert lines[-1]["events"] == report.as_dict()["events"] and lines[-1]["min"] == 2
