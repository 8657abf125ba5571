# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real balancer command against a real Apache, a moto server over HTTP and slave stand-ins.

Table used (tests/support/balancer.py): below 20 req/s no slaves, from 20
req/s 1-2 slaves, from 100 req/s 3-4. Polls every 1.8 s, ready_timeout 30 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import BALANCER_TAG, GENERATION_TAG
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import read_renderfarm
from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import (
    BalancerProcess,
    balancer_command,
    write_conf,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import (
    SECRET_KEY as SECRET,
    make_snapshots,
    run_foreign_instances,
    slave_image,
)

BID = "test-balancer"
POLL = 0.03 * 60


def ours(client: t.Any, balancer_id: str = BID, states: t.Sequence[str] = ("pending", "running")) -> dict[str, str]:
    """Tagged instances in ``states``: id -> private IP."""
    pages = client.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": f"tag:{BALANCER_TAG}", "Values": [balancer_id]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
    )
    return {i["InstanceId"]: i.get("PrivateIpAddress") for p in pages for r in p["Reservations"] for i in r["Instances"]}


def state_of(client: t.Any, ids: t.Iterable[str]) -> dict[str, str]:
    found = client.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}


def urls(addresses: t.Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(f"http://{a}:8101" for a in addresses))


@pytest.fixture
def world(tmp_path, private_apache, moto_server, ec2_client, network, slave_stand_ins):
    """Everything a balancer needs, on loopback: Apache, moto, the slaves' subnet, an image."""
    image = slave_image(ec2_client)

    class World:
        apache = private_apache
        moto = moto_server
        ec2 = ec2_client
        net = network
        stand_ins = slave_stand_ins
        ami = image
        directory = tmp_path

        def conf(self, **kw: t.Any):
            kw.setdefault("status_url", private_apache.status_url)
            kw.setdefault("image_id", image)
            kw.setdefault("subnet", network.subnet_id)
            return write_conf(tmp_path, **kw)

        def balancer(self, conf, env=None, **kw: t.Any) -> BalancerProcess:
            return BalancerProcess(conf, env=env or moto_server.environ(), **kw)

    return World()


def load_until(bal: BalancerProcess, predicate: t.Callable[[dict], bool], timeout: float = 60.0) -> dict:
    return bal.wait_next_report(predicate, timeout)


def assert_farm_is_ready_set(world: t.Any, bal: BalancerProcess) -> None:
    """Every listed renderer is a living slave answering 403, and every such slave of ours is listed."""
    alive = ours(world.ec2, states=("running",))
    answering = {iid: addr for iid, addr in world.stand_ins.answering().items() if iid in alive}
    assert set(bal.renderers()) == set(urls(answering.values())), bal.log_tail()


def test_load_step_up_and_down(world, fixed_rate_load):
    conf = world.conf()
    with world.balancer(conf) as bal:
        bal.wait_ready()
        first = bal.next_report()
        assert first["min"] == 0 and first["pending"] + first["booting"] + first["ready"] == 0

        load = fixed_rate_load(world.apache.small_file_url, 50)
        stepped = load_until(bal, lambda s: s["min"] >= 1)
        assert 20 <= stepped["load"] <= 80, stepped
        # Launched in the poll that saw the step: the very next poll counts it.
        after = bal.next_report()
        assert after["pending"] + after["booting"] + after["ready"] >= 1, after
        load_until(bal, lambda s: s["ready"] >= 1)
        bal.next_status()  # the poll after a slave turns ready has published it
        assert_farm_is_ready_set(world, bal)
        assert len(bal.renderers()) == 1

        load.stop()
        # The poll that saw the drop scales in: out of the farm, then terminated.
        load_until(bal, lambda s: s["max"] == 0)
        assert bal.renderers() == ()
        # A whole poll window after the stop measures about zero.
        quiet = bal.next_report()
        assert quiet["load"] < 1, quiet
        assert ours(world.ec2) == {}
        assert bal.terminate() == 0


def test_once_dry_run_reports_and_changes_nothing(world, fixed_rate_load):
    conf = world.conf()
    fixed_rate_load(world.apache.small_file_url, 50)
    out = subprocess.run(
        [*balancer_command(), "--conf", str(conf), "--once", "--dry-run"],
        env=world.moto.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert isinstance(report["load"], float) and 20 <= report["load"] <= 80
    assert (report["min"], report["max"]) == (1, 2)
    assert report["plan"]["launch"] == 1
    assert report["fleet"]["ready"] == 0 and report["fleet"]["instances"] == []
    assert report["dry_run"] is True
    assert ours(world.ec2) == {}
    assert not (world.directory / "renderfarm.conf").exists()


def test_sigkill_and_restart_adopts_the_fleet(world, fixed_rate_load):
    conf = world.conf()
    fixed_rate_load(world.apache.small_file_url, 50, max_duration=240)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] >= 1)
        bal.kill()
    before = ours(world.ec2)
    assert len(before) == 1
    with world.balancer(conf) as bal:
        bal.wait_ready()
        adopted = load_until(bal, lambda s: s["ready"] == 1)
        for dummy in range(3):
            status = bal.next_report()
            assert status["pending"] + status["booting"] + status["ready"] == 1, status
        assert ours(world.ec2) == before, "a restarted balancer launched duplicates"
        assert adopted["min"] == 1
        assert bal.renderers() == urls(before.values())
        assert bal.terminate() == 0
    assert ours(world.ec2, states=("pending", "running", "stopping", "stopped")) == {}


def test_instance_terminated_behind_its_back_is_dropped_and_replaced(world, fixed_rate_load):
    conf = world.conf()
    fixed_rate_load(world.apache.small_file_url, 50, max_duration=240)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] >= 1)
        bal.next_status()
        (victim, address), = ours(world.ec2).items()
        assert bal.renderers() == urls([address])
        world.ec2.terminate_instances(InstanceIds=[victim])
        # Within one poll (two status lines: one poll may have been under way) it
        # leaves the render farm; the same poll launches the replacement.
        for dummy in range(2):
            bal.next_status()
            if urls([address])[0] not in bal.renderers() or address in ours(world.ec2).values():
                break
        else:
            raise AssertionError(f"{victim} still in the render farm: {bal.renderers()}")
        assert victim not in ours(world.ec2)
        load_until(bal, lambda s: s["ready"] == 1)
        bal.next_status()
        replacement = ours(world.ec2)
        assert len(replacement) == 1 and victim not in replacement
        assert_farm_is_ready_set(world, bal)
        assert bal.terminate() == 0


def test_hanging_slave_does_not_stall_the_loop_and_is_replaced(world, fixed_rate_load):
    world.stand_ins.behaviour = "hang"
    conf = world.conf(ready_timeout=0.15)  # 9 s
    fixed_rate_load(world.apache.small_file_url, 50, max_duration=240)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["booting"] >= 1)
        hung = set(ours(world.ec2))
        world.stand_ins.wait_listening(1, behaviour="hang")
        t0 = len(bal.poll_statuses())
        # Let the slave hang through several polls, then past ready_timeout.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and hung & set(ours(world.ec2)):
            bal.next_status()
        times = [at for at, dummy in bal.poll_statuses()[t0:]]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps and max(gaps) < POLL + 2.0 + 1.5, gaps  # poll interval + one check timeout + slack
        assert not hung & set(ours(world.ec2)), "the hanging slave was never replaced"
        assert bal.renderers() == ()  # never listed: it never answered
        world.stand_ins.behaviour = "ready"
        load_until(bal, lambda s: s["ready"] >= 1)
        assert bal.terminate() == 0


def test_foreign_instances_are_never_touched(world, fixed_rate_load):
    untagged = run_foreign_instances(world.ec2, None, 1)
    other = run_foreign_instances(world.ec2, None, 1, tags={BALANCER_TAG: "someone-else", "Name": "GBrowse Slave"})
    conf = world.conf()
    load = fixed_rate_load(world.apache.small_file_url, 50)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] >= 1)
        load.stop()
        load_until(bal, lambda s: s["max"] == 0)
        assert bal.terminate() == 0
    assert set(state_of(world.ec2, untagged + other).values()) == {"running"}


def test_throttled_api_converges(world, fixed_rate_load, fault_proxy):
    conf = world.conf()
    env = {**world.moto.environ(), "AWS_ENDPOINT_URL": fault_proxy.url}
    fixed_rate_load(world.apache.small_file_url, 50, max_duration=240)
    with world.balancer(conf, env=env) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] >= 1, timeout=90)
        assert bal.terminate() == 0
    stats = fault_proxy.stats()
    assert stats["failed"] >= 3, stats  # the faults really happened
    assert ours(world.ec2) == {}


def test_apache_down_holds_the_fleet(world, fixed_rate_load):
    conf = world.conf()
    fixed_rate_load(world.apache.small_file_url, 50, max_duration=240)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] >= 1)
        fleet = ours(world.ec2)
        world.apache.stop()
        for dummy in range(4):
            status = bal.next_report()
            assert status["held"] and status["load"] is None, status
            assert status["ready"] == len(fleet), status
        assert ours(world.ec2) == fleet
        assert len(bal.renderers()) == len(fleet)
        assert bal.terminate() == 0


@contextlib.contextmanager
def read_only(directory: t.Any) -> t.Iterator[None]:
    """``directory`` as a read-only bind mount: not even root can create a file in it."""
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_unwritable_renderfarm_directory_holds_the_fleet(world, tmp_path):
    """renderfarm.conf's directory turns read-only mid-run: no launch and no termination until it is
    writable again, and STATUS says why; then the fleet follows the conf again."""
    farm = tmp_path / "farm"
    farm.mkdir()
    extra = {"renderfarm_conf": str(farm / "renderfarm.conf")}
    conf = world.conf(table=((0.0, 1, 1),), extra_master=extra)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 1)
        fleet = ours(world.ec2)
        listed = read_renderfarm(str(farm / "renderfarm.conf")).renderers
        assert listed == urls(fleet.values())
        with read_only(farm):
            for table in ((0.0, 2, 2), (0.0, 0, 0)):  # wants one more (a launch), then none (a termination)
                world.conf(table=(table,), extra_master=extra)
                bal.signal(signal.SIGHUP)
                status = load_until(bal, lambda s: s["min"] == table[1] == s["max"])
                for dummy in range(3):
                    assert status["holding"] and "Read-only file system" in status["holding"], status
                    assert ours(world.ec2) == fleet
                    status = bal.next_report()
                assert read_renderfarm(str(farm / "renderfarm.conf")).renderers == listed
        assert "Cannot publish the render farm" in bal.log_tail(20000)
        load_until(bal, lambda s: s["holding"] is None and s["ready"] == 0)
        assert ours(world.ec2) == {} and read_renderfarm(str(farm / "renderfarm.conf")).renderers == ()
        assert "The render farm is published again" in bal.log_tail(20000)
        assert bal.terminate() == 0


def test_a_slow_slave_stays_for_ready_misses_polls_and_a_refusing_one_leaves_at_once(world):
    """ready_misses = 3: a ready slave that stops answering in time (busy) is kept through two slow
    checks and leaves at the third; one that refuses connections leaves at the first."""
    conf = world.conf(table=((0.0, 2, 2),), ready_timeout=2.0, extra_slave={"ready_misses": "3"})
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 2)
        slow, refusing = sorted(ours(world.ec2).items())
        slow_url, refusing_url = urls([slow[1]])[0], urls([refusing[1]])[0]
        # The refusing one first: a poll between the two changes then only adds a poll with both ready.
        world.stand_ins.set_behaviour(refusing[0], "refuse")
        world.stand_ins.set_behaviour(slow[0], "hang")
        farms: list[set[str]] = []
        while len(farms) < 8 and (not farms or slow_url in farms[-1]):
            bal.next_status()
            farms.append(set(bal.renderers()))
        # Once the refusing slave is out, the slow one stays for two polls and leaves at the third.
        assert [slow_url in farm for farm in farms if refusing_url not in farm][-3:] == [True, True, False], farms
        log = bal.log_tail(40000)
        misses = re.findall(rf"Slave {slow[0]} at \S+ is slow to answer \((\d) of 3 checks in a row\)", log)
        assert misses == ["1", "2"], log
        assert f"Slave {refusing[0]} at {refusing[1]} is slow" not in log
        lost = [line for line in log.splitlines() if "stopped answering" in line]
        assert len(lost) == 2 and refusing[0] in lost[0] and slow[0] in lost[1], lost
        assert bal.terminate() == 0


def test_sigterm_cleans_up_everything(world, fixed_rate_load):
    conf = world.conf(table=((0.0, 2, 2),))
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 2)
        assert bal.terminate() == 0
        assert any(line == "STOPPING=1" for dummy, line in bal.messages)
    assert ours(world.ec2, states=("pending", "running", "shutting-down", "stopping", "stopped")) == {}
    tag = [{"Name": f"tag:{BALANCER_TAG}", "Values": [BID]}]
    assert world.ec2.describe_security_groups(Filters=tag)["SecurityGroups"] == []
    assert world.ec2.describe_launch_templates(Filters=tag)["LaunchTemplates"] == []
    assert bal.renderers() == ()


def test_on_exit_keep_leaves_the_fleet_for_the_next_balancer(world):
    conf = world.conf(table=((0.0, 1, 1),), extra_master={"on_exit": "keep"})
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 1)
        assert bal.terminate() == 0
    kept = ours(world.ec2)
    assert len(kept) == 1
    with world.balancer(world.conf(table=((0.0, 1, 1),))) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 1)
        assert ours(world.ec2) == kept
        assert bal.terminate() == 0
    assert ours(world.ec2) == {}


def test_sighup_reloads_and_a_broken_conf_keeps_the_old_one(world):
    conf = world.conf(table=((0.0, 0, 0),))
    with world.balancer(conf) as bal:
        bal.wait_ready()
        bal.next_status()
        good = conf.read_text()
        conf.write_text(good.replace("spot_bid          = 0.10", "spot_bid          = lots"))
        bal.signal(signal.SIGHUP)
        status = bal.next_report()
        assert (status["min"], status["max"]) == (0, 0)
        assert "keeping the running configuration" in bal.log_tail()
        assert "spot_bid: 'lots' is not a number" in bal.log_tail()
        world.conf(table=((0.0, 1, 1),))
        bal.signal(signal.SIGHUP)
        load_until(bal, lambda s: s["min"] == 1)
        assert any(line == "RELOADING=1" for dummy, line in bal.messages)
        # A key read only at start: named in a warning, and the running balancer keeps its id and fleet.
        launched = set(ours(world.ec2))
        text = conf.read_text()
        assert text.count("balancer_id       = test-balancer\n") == 1
        conf.write_text(text.replace("balancer_id       = test-balancer\n", "balancer_id = another\n"))
        bal.signal(signal.SIGHUP)
        status = bal.next_report()
        assert status["min"] == 1 and set(ours(world.ec2)) == launched
        assert "balancer_id, state_file changed; read only at start" in bal.log_tail()
        assert bal.terminate() == 0


def test_sighup_when_the_conf_became_a_fifo_keeps_the_old_one_and_sigterm_still_works(world):
    """A FIFO with no writer would block open(): the reload refuses it at once and the daemon stays responsive."""
    conf = world.conf(table=((0.0, 0, 0),))
    with world.balancer(conf) as bal:
        bal.wait_ready()
        bal.next_status()
        conf.unlink()
        os.mkfifo(conf)
        bal.signal(signal.SIGHUP)
        status = bal.next_report()
        assert (status["min"], status["max"]) == (0, 0)
        assert f"{conf}: not a regular file (a FIFO)" in bal.log_tail()
        assert "keeping the running configuration" in bal.log_tail()
        assert bal.terminate() == 0
        assert "Normal termination" in bal.log_tail()


def test_check_config(world, tmp_path):
    good = world.conf()
    ok = subprocess.run([*balancer_command(), "--check-config", "--conf", str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "20" in ok.stdout and BID in ok.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text(good.read_text().replace("ports             = 8101", "ports             = 70000"))
    out = subprocess.run([*balancer_command(), "--check-config", "--conf", str(bad)], capture_output=True, text=True, check=False)
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("ports"))
    assert out.returncode == 78
    assert f"{bad}:{line}: ports" in out.stderr and "Traceback" not in out.stderr
    missing = subprocess.run([*balancer_command(), "--check-config", "--conf", str(tmp_path / "nope.conf")], capture_output=True, text=True, check=False)
    assert missing.returncode == 78 and "nope.conf" in missing.stderr


def test_wrong_option_is_a_usage_error():
    out = subprocess.run([*balancer_command(), "--verbosity", "9"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "--verbosity" in out.stderr


def test_background_pidfile_logfile_and_kill(world, tmp_path):
    """The original's way of running it by hand: --background, a locked pid file, --kill."""
    conf = world.conf(table=((0.0, 1, 1),))
    pidfile, logfile = tmp_path / "balancer.pid", tmp_path / "balancer.log"
    common = ["--conf", str(conf), "--pidfile", str(pidfile)]
    env = world.moto.environ()
    started = subprocess.run(
        [*balancer_command(), *common, "--background", "--logfile", str(logfile), "--verbosity", "3"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "1 ready" not in (logfile.read_text() if logfile.exists() else ""):
        time.sleep(0.3)
    log = logfile.read_text()
    assert "1 ready" in log, log
    # [24/Nov/2026:10:00:00 +0000] message, as the original wrote
    assert re.match(r"^\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ", log), log[:200]
    pid = int(pidfile.read_text())
    again = subprocess.run([*balancer_command(), *common, "--background"], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert again.returncode != 0 and f"already running (pid {pid}" in again.stderr
    killed = subprocess.run([*balancer_command(), *common, "--kill"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == 0, killed.stderr
    assert not pidfile.exists()
    assert "Normal termination" in logfile.read_text()
    assert ours(world.ec2) == {}
    assert SECRET not in logfile.read_text()


def test_original_credentials_work_and_never_reach_the_log(world):
    conf = world.conf()
    env = {k: v for k, v in world.moto.environ().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    secret = "gbrowse-test-secret-" + "s" * 24
    from_env = subprocess.run(
        [*balancer_command(), "-c", str(conf), "--once", "--dry-run", "--verb", "3"],
        env={**env, "EC2_ACCESS_KEY": "AKIAGBROWSETEST", "EC2_SECRET_KEY": secret},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert from_env.returncode == 0, from_env.stderr
    assert "visible to every user" not in from_env.stderr
    from_argv = subprocess.run(
        [*balancer_command(), "-conf", str(conf), "--once", "--dry-run", "--verbosity", "3",
         "--access_key", "AKIAGBROWSETEST", "--secret_key", secret],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert from_argv.returncode == 0, from_argv.stderr
    assert "visible to every user" in from_argv.stderr
    for out in (from_env, from_argv):
        assert secret not in out.stdout + out.stderr


def test_a_steady_poll_costs_one_ec2_call(world):
    """Counted on the wire by a pass-through proxy: DescribeInstances once per poll, nothing else."""
    from ansible_collections.gmod.gbrowse_aws.tests.support.faultproxy import FaultProxy

    conf = world.conf(table=((0.0, 3, 3),))
    with FaultProxy(world.moto.url, fail_ratio=0.0) as counter:
        env = {**world.moto.environ(), "AWS_ENDPOINT_URL": counter.url}
        with world.balancer(conf, env=env) as bal:
            bal.wait_ready()
            load_until(bal, lambda s: s["ready"] == 3)
            bal.next_status()
            before = dict(counter.forwarded)
            for dummy in range(4):
                bal.next_status()
            after = dict(counter.forwarded)
            spent = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
            assert spent in ({"DescribeInstances": 4}, {"DescribeInstances": 5}), spent  # 4 polls (+1 under way)
            assert bal.terminate() == 0


def test_a_slave_joins_the_farm_between_polls(world):
    """With 30 s polls, a slave that starts answering mid-way is in renderfarm.conf before the next poll."""
    world.stand_ins.boot_delay = 15.0  # answers 15 s after EC2 shows it running: between the polls
    conf = world.conf(table=((0.0, 1, 1),), poll_interval=0.5)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        launched = bal.next_report(timeout=60)
        assert len(launched["launched"]) == 1, launched
        world.stand_ins.wait_listening(1, timeout=40)
        answering = time.monotonic()
        while not bal.renderers() and time.monotonic() < answering + 25:
            time.sleep(0.1)
        joined = time.monotonic() - answering
        assert bal.renderers() == urls(ours(world.ec2).values()), bal.log_tail()
        assert len(bal.reports()) == 1, f"listed only by the next poll, {joined:.1f} s after it answered"
        print(f"joined the farm {joined:.1f} s after it answered")
        assert bal.terminate() == 0


def test_new_data_snapshots_replace_the_farm_without_dipping_below_min(world):
    """A fixed farm of 2 ready slaves (band 2-2), then the sync's edit: data_snapshots changes and the
    balancer gets SIGHUP. One slave at a time is replaced, launch first: the farm ends with only slaves
    of the new data generation (tag and report), and renderfarm.conf never lists fewer than 2."""
    old_snap, new_snap = make_snapshots(world.ec2, world.net.availability_zone, 2)
    conf = world.conf(table=((0.0, 2, 2),), extra_slave={"data_snapshots": old_snap})
    with world.balancer(conf) as bal:
        bal.wait_ready()
        before = load_until(bal, lambda s: s["ready"] == 2 and not s["stale"])
        old_generation = before["generation"]
        old_fleet = ours(world.ec2)
        assert {generation_of(world.ec2, iid) for iid in old_fleet} == {old_generation}

        world.conf(table=((0.0, 2, 2),), extra_slave={"data_snapshots": new_snap})
        bal.signal(signal.SIGHUP)
        start = len(bal.reports())
        farm_sizes = []  # renderfarm.conf as GBrowse would read it, every 0.1 s
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            farm_sizes.append(len(bal.renderers()))
            done = [r for r in bal.reports()[start:] if r["generation"] != old_generation and not r["stale"] and r["ready"] == 2]
            if done:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the farm did not converge to the new data: {bal.log_tail()}")
        refresh = bal.reports()[start:]
        new_generation = done[0]["generation"]
        first_new = next(n for n, r in enumerate(refresh) if r["generation"] == new_generation)
        during = refresh[first_new:]
        dip = 2 - min([len(r["renderfarm"]) for r in during] + farm_sizes)
        most = max(r["pending"] + r["booting"] + r["ready"] for r in during)
        print(f"refresh: {len(during)} polls, deepest dip below min {max(dip, 0)}, at most {most} slaves")
        assert dip <= 0, ([len(r["renderfarm"]) for r in during], farm_sizes)
        assert most <= 3  # max 2 + refresh_batch 1: a fixed-size farm's room for the batch

        fleet = ours(world.ec2, states=("running",))
        assert len(fleet) == 2 and not set(fleet) & set(old_fleet)
        assert {generation_of(world.ec2, iid) for iid in fleet} == {new_generation}
        assert bal.renderers() == urls(fleet.values())
        replaced = re.findall(r"Slave (i-\w+) at \S+ has old data: replaced, data generation (\w+) -> (\w+)", bal.log_tail(80000))
        assert sorted(replaced) == sorted((iid, old_generation, new_generation) for iid in old_fleet), replaced
        assert bal.terminate() == 0


def generation_of(client: t.Any, instance_id: str) -> str | None:
    found = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in found.get("Tags", ())}.get(GENERATION_TAG)
