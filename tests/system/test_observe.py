# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the running balancer tells: ``status`` (human, JSON, stale, absent), the rotated history, and
one log line per slave event. Real balancer, real Apache, moto over HTTP, slave stand-ins.

Polls every 1.8 s (tests/support/balancer.py).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import balancer_command
from ansible_collections.gmod.gbrowse_aws.tests.system.test_balancer import (  # noqa: F401 pylint: disable=unused-import
    load_until,
    ours,
    world,
)


def status(conf: t.Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*balancer_command(), "status", "--conf", str(conf), *args], capture_output=True, text=True, timeout=30, check=False
    )


def observed(world: t.Any, **extra: str) -> t.Any:
    return {"state_file": str(world.directory / "state.json"), **extra}


def test_status_of_a_running_stale_and_stopped_balancer(world):
    conf = world.conf(table=((0.0, 1, 1),), extra_master=observed(world))
    absent = status(conf)
    assert absent.returncode == 2 and "CRITICAL: not running: no state file" in absent.stdout, absent
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 1)
        bal.next_report()  # the state file is written after the report's poll
        (iid, address), = ours(world.ec2).items()
        human = status(conf)
        assert human.returncode == 0, human
        lines = human.stdout.splitlines()
        assert lines[0].startswith(f"gbrowse_aws_balancer OK: running (pid {bal.proc.pid})"), human.stdout
        assert "wanted    1-1 slaves: load " in human.stdout and "row at line 3 (>= 0 req/s: 1-1 slaves)" in human.stdout
        row = next(line for line in lines if line.lstrip().startswith(iid)).split()
        described = world.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        zone = described["Placement"]["AvailabilityZone"]
        assert row[1:4] == ["m5.large", zone, address] and row[4] == "ready" and row[-1] == "yes", row
        assert f"{iid} joined ({address}): answered the readiness check" in human.stdout
        assert re.search(r"spend     \$0\.100/h \(spot_bid per slave: an upper bound", human.stdout), human.stdout
        as_json = status(conf, "--json")
        assert as_json.returncode == 0, as_json
        shown = json.loads(as_json.stdout)
        assert (shown["status"], shown["pid"], shown["phase"]) == ("OK", bal.proc.pid, "running")
        (slave,) = shown["slaves"]
        assert (slave["id"], slave["address"], slave["in_farm"], slave["spot_price"]) == (iid, address, True, None)
        assert [a["event"] for a in shown["actions"]] == ["launched", "joined"]
        assert shown["spend"]["basis"] == "spot_bid" and shown["spend"]["since_start"] > 0

        bal.signal(signal.SIGSTOP)  # hung: no poll for more than 3 intervals
        try:
            time.sleep(3 * 1.8 + 1.5)
            stale = status(conf)
        finally:
            bal.signal(signal.SIGCONT)
        assert stale.returncode == 2 and "CRITICAL: stale: the last state is" in stale.stdout, stale
        bal.next_report()
        assert status(conf).returncode == 0
        assert bal.terminate() == 0
    stopped = status(conf)
    assert stopped.returncode == 2 and "CRITICAL: not running: stopped" in stopped.stdout, stopped


def test_status_of_a_killed_balancer_and_of_a_broken_state_file(world):
    conf = world.conf(table=((0.0, 0, 0),), extra_master=observed(world))
    with world.balancer(conf) as bal:
        bal.wait_ready()
        bal.next_report()
        pid = bal.proc.pid
        bal.kill()
    killed = status(conf)
    assert killed.returncode == 2 and f"CRITICAL: not running: pid {pid} is gone" in killed.stdout, killed
    (world.directory / "state.json").write_bytes(b"\x00garbage")
    broken = status(conf, "--json")
    assert broken.returncode == 3 and broken.stdout == "", broken
    assert broken.stderr.count("\n") == 1 and "not a balancer state file" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_history_rotates_and_each_slave_event_is_one_named_log_line(world, fixed_rate_load):
    history = world.directory / "history.jsonl"
    extra = observed(world, history_file=str(history), history_max_bytes="4096")
    conf = world.conf(table=((0.0, 2, 2),), extra_master=extra)
    fixed_rate_load(world.apache.small_file_url, 5)
    with world.balancer(conf) as bal:
        bal.wait_ready()
        load_until(bal, lambda s: s["ready"] == 2)
        bal.next_report()
        fleet = ours(world.ec2)
        victim = sorted(fleet)[0]
        world.ec2.terminate_instances(InstanceIds=[victim])  # reclaimed behind the balancer's back
        load_until(bal, lambda s: s["ready"] == 2 and victim not in {i["id"] for i in s["fleet"]["instances"]})
        deadline = time.monotonic() + 30
        while not (world.directory / "history.jsonl.2").exists() and time.monotonic() < deadline:
            bal.next_report()
        assert bal.terminate() == 0
        log = bal.log_tail(200000)
    about = [line for line in log.splitlines() if f"Slave {victim} " in line]
    assert [re.sub(r"^.*?Slave \S+ at (\(no address yet\)|\S+) ", "", line) for line in about] == [
        "launched: wanted 2-2, 0 counted",
        "joined the render farm: answered the readiness check",
        "left the render farm: vanished: no longer described by EC2 (reclaimed, or terminated outside the balancer)",
    ], about
    assert f"Slave {victim} at {fleet[victim]} left the render farm" in log
    survivor = sorted(fleet)[1]
    assert [line.split(": ", 1)[0].split(f"{fleet[survivor]} ")[-1] for line in log.splitlines() if f"Slave {survivor} " in line][-2:] == [
        "left the render farm", "terminated",
    ]
    assert f"Slave {survivor} at {fleet[survivor]} terminated: shutdown" in log

    names = ["history.jsonl.3", "history.jsonl.2", "history.jsonl.1", "history.jsonl"]
    present = [n for n in names if (world.directory / n).exists()]
    assert present[-3:] == names[-3:], present
    records = [json.loads(line) for n in present for line in (world.directory / n).read_text().splitlines()]
    assert all((world.directory / n).stat().st_size <= 4096 for n in present)
    times = [r["time"] for r in records]
    assert times == sorted(times) and len(records) >= 4
    assert any(e["id"] == victim and e["event"] == "left" for r in records for e in r["events"])
    assert sum(r["requests"] or 0 for r in records) > 0
    replay = subprocess.run(
        [*balancer_command(), "simulate", "--conf", str(conf), "--json", str(world.directory / "history.jsonl*")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["requests"] > 0
