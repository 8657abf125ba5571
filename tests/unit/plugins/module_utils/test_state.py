# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The state file and ``gbrowse_aws_balancer status``: the check's verdicts, the rendering, bad files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _state as st
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import balancer_main

NOW = 1_764_669_600.0


def state(**over) -> dict:
    base = {
        "version": 1,
        "pid": 4242,
        "host": "master",
        "balancer_id": "test-balancer",
        "conf": "/etc/gbrowse/aws_balancer.conf",
        "phase": "running",
        "time": NOW - 20,
        "poll_time": NOW - 20,
        "started": NOW - 3600,
        "poll_interval": 30.0,
        "dry_run": False,
        "load": {"value": 12.4, "signal": "rate", "measured": 11.9, "apache_lifetime": 3.1, "busy_workers": 7, "idle_workers": 43},
        "band": {"min": 1, "max": 2, "held": False, "why": "load 12.40: row at line 4 (>= 10 req/s: 1-2 slaves)"},
        "holding": None,
        "slaves": [
            {"id": "i-0abc", "type": "m5.large", "zone": "us-west-2a", "address": "10.0.3.17", "state": "running",
             "slave_state": "ready", "age": 3723.0, "spot_price": None, "in_farm": True, "launched": NOW - 3723},
            {"id": "i-0def", "type": "c5.large", "zone": "us-west-2b", "address": None, "state": "pending",
             "slave_state": "pending", "age": 5.0, "spot_price": 0.0312, "in_farm": False, "launched": NOW - 5},
        ],
        "actions": [{"time": NOW - 3000, "id": "i-0abc", "address": "10.0.3.17", "event": "joined", "reason": "answered the readiness check"}],
        "errors": [{"time": NOW - 600, "message": "InsufficientInstanceCapacity: no capacity"}],
        "last_errors": [],
        "spend": {"per_hour": 0.1, "basis": "spot_bid", "note": "spot_bid per slave: an upper bound", "since_start": 0.1, "since": NOW - 3600},
    }
    base.update(over)
    return base


def alive(pid: int) -> bool:
    return pid == 4242


@pytest.mark.parametrize(
    "over, code, words",
    [
        ({}, st.OK, "running (pid 4242)"),
        ({"phase": "starting"}, st.OK, "starting (no poll yet)"),
        ({"time": NOW - 89}, st.OK, "running"),
        ({"time": NOW - 91}, st.CRITICAL, "stale: the last state is 1m31s old, more than 3 polls of 30 s"),
        ({"pid": 99}, st.CRITICAL, "not running: pid 99 is gone"),
        ({"phase": "stopped", "pid": 99}, st.CRITICAL, "not running: stopped 20 s ago"),
        ({"phase": "stopping"}, st.CRITICAL, "stopping (pid 4242)"),
        ({"holding": "cannot write /x/renderfarm.conf: Read-only"}, st.WARNING, "HOLDING the fleet: cannot write"),
        ({"band": {"min": 1, "max": 2, "held": True, "why": "no load figure"}}, st.WARNING, "holding the fleet: no load figure"),
        ({"last_errors": ["Poll failed: throttled"]}, st.WARNING, "the last poll had errors: Poll failed: throttled"),
    ],
)
def test_the_checks_verdict(over, code, words):
    got, message = st.check(state(**over), NOW, alive)
    assert got == code and words in message, message


def test_render_shows_load_band_why_spend_slaves_actions_and_errors():
    text = st.render(state(), st.OK, "running (pid 4242)", NOW)
    lines = text.splitlines()
    assert lines[0] == "gbrowse_aws_balancer OK: running (pid 4242)"
    assert "load      12.40 (rate; measured 11.90 req/s, Apache lifetime 3.10 req/s)" in lines
    assert "wanted    1-2 slaves: load 12.40: row at line 4 (>= 10 req/s: 1-2 slaves)" in lines
    assert any(line.startswith("spend     $0.100/h (spot_bid per slave: an upper bound)") for line in lines)
    header = next(line for line in lines if line.lstrip().startswith("ID "))
    assert header.split() == ["ID", "TYPE", "ZONE", "ADDRESS", "STATE", "AGE", "SPOT", "$/h", "IN", "FARM"]
    ready = next(line for line in lines if "i-0abc" in line and "m5.large" in line).split()
    assert ready == ["i-0abc", "m5.large", "us-west-2a", "10.0.3.17", "ready", "(running)", "1h02m", "-", "yes"]
    pending = next(line for line in lines if "i-0def" in line).split()
    assert pending[3] == "-" and pending[-2:] == ["0.0312", "no"]
    assert any("i-0abc joined (10.0.3.17): answered the readiness check" in line for line in lines)
    assert any("InsufficientInstanceCapacity" in line for line in lines)


def test_render_of_a_state_before_the_first_poll():
    fresh = state(phase="starting", slaves=[], actions=[], errors=[],
                  load={"value": None, "signal": "rate", "measured": None, "apache_lifetime": None},
                  band={"min": None, "max": None, "held": False, "why": ""})
    text = st.render(fresh, st.OK, "starting", NOW)
    assert "load      n/a (rate; measured n/a req/s" in text and "no decision yet" in text
    assert "slaves    none" in text and "recent actions: none" in text


def test_spend_integrates_the_rate_between_polls_and_says_its_basis():
    rows = [{"state": "running", "spot_price": None}, {"state": "running", "spot_price": None}, {"state": "pending"}]
    assert st.spend_rate(rows, 0.10) == (pytest.approx(0.2), "spot_bid")
    assert st.spend_rate([{"state": "running", "spot_price": 0.03}], 0.10) == (0.03, "spot price")
    assert st.spend_rate([{"state": "running", "spot_price": 0.03}, {"state": "running"}], 0.10) == (pytest.approx(0.13), "mixed")
    spend = st.Spend(started=0.0)
    spend.update(0.0, 0.2, "spot_bid")
    spend.update(1800.0, 0.4, "spot_bid")  # half an hour at $0.20/h
    spend.update(3600.0, 0.0, "spot_bid")  # half an hour at $0.40/h
    assert spend.total == pytest.approx(0.3)
    assert spend.as_dict()["basis"] == "spot_bid" and "upper bound" in spend.as_dict()["note"]


def test_the_state_file_is_written_atomically_and_readable_by_anyone(tmp_path):
    path = tmp_path / "state.json"
    st.write_state(str(path), state())
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert st.read_state(str(path)) == state()


@pytest.mark.parametrize(
    "content, words",
    [
        (b"\x00\x01garbage", "not a balancer state file (not JSON"),
        (b"[1, 2]", "not a balancer state file (not a JSON object)"),
        (b'{"version": 7}', "version 7, expected 1"),
        (json.dumps({**state(), "pid": "x", "slaves": {}}).encode(), "bad or missing pid, slaves"),
    ],
)
def test_a_bad_state_file_is_one_clear_error(tmp_path, content, words):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(st.StateError) as info:
        st.read_state(str(path))
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def write_conf(tmp_path, state_file) -> str:
    conf = tmp_path / "aws_balancer.conf"
    conf.write_text(f"[LOAD TABLE]\n0 0 1\n[MASTER]\nstate_file = {state_file}\npoll_interval = 0.5\n[SLAVE]\n")
    return str(conf)


def test_status_command_exit_codes_and_outputs(tmp_path, capsys):
    path = tmp_path / "state.json"
    conf = write_conf(tmp_path, path)
    assert balancer_main(["status", "--conf", conf]) == st.CRITICAL  # no state file: not running
    out = capsys.readouterr()
    assert out.out.startswith("gbrowse_aws_balancer CRITICAL: not running: no state file") and str(path) in out.out
    st.write_state(str(path), state(pid=os.getpid(), time=NOW))
    assert st.main(["--conf", conf, "--json"], lambda: "unused", now=lambda: NOW + 1) == st.OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["code"], shown["state_file"]) == ("OK", 0, str(path))
    assert shown["slaves"][0]["id"] == "i-0abc" and shown["band"]["why"].startswith("load 12.40")
    assert st.main(["--conf", conf], lambda: "unused", now=lambda: NOW + 1000) == st.CRITICAL  # stale
    assert "CRITICAL: stale" in capsys.readouterr().out
    path.write_text("{ half a state")
    assert balancer_main(["status", "--conf", conf]) == st.UNKNOWN
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a balancer state file" in err and "Traceback" not in err
    path.unlink()
    path.mkdir()
    assert balancer_main(["status", "--conf", conf]) == st.UNKNOWN
    assert "cannot read: Is a directory" in capsys.readouterr().err


def test_status_with_a_broken_conf_or_option_is_unknown(tmp_path, capsys):
    bad = tmp_path / "bad.conf"
    bad.write_text("[LOAD TABLE]\n0 0 1\n[MASTER]\nstate_file = relative/state.json\n[SLAVE]\n")
    assert balancer_main(["status", "--conf", str(bad)]) == st.UNKNOWN
    assert f"{bad}:4: state_file: 'relative/state.json' is not an absolute path" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        balancer_main(["status", "--bogus"])
    assert info.value.code == st.UNKNOWN
