# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""balancer_simulate: its options, checked as the command checks them, and the command's figures."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import balancer_main
from ansible_collections.gmod.gbrowse_aws.plugins.modules import balancer_simulate
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_simulate import CONF


def run_module(capsys, args: dict) -> dict:
    """The module's JSON answer (exit_json and fail_json both exit)."""
    with patch_module_args(args), pytest.raises(SystemExit):
        balancer_simulate.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture(name="files")
def files_fixture(tmp_path):
    """A conf per policy and an hour of traffic at 2 req/s between quiet stretches."""
    for policy in ("adaptive", "immediate"):
        (tmp_path / f"{policy}.conf").write_text(CONF.format(policy=policy))
    (tmp_path / "t.csv").write_text(
        "time,requests\n" + "".join(f"{i},{2 if 600 <= i < 2400 else 0}\n" for i in range(3000))
    )
    return tmp_path


def test_same_figures_as_the_command(files, capsys) -> None:
    confs = [str(files / "adaptive.conf"), str(files / "immediate.conf")]
    argv = ["simulate", str(files / "t.csv"), "--json", "--seed", "3"]
    assert balancer_main(argv + [x for c in confs for x in ("--conf", c)]) == 0
    command = json.loads(capsys.readouterr().out)
    result = run_module(capsys, {"inputs": [str(files / "t.csv")], "conf": confs, "seed": 3})
    assert result["changed"] is False and "failed" not in result
    for key in ("inputs", "start", "seconds", "lines", "skipped_lines", "requests", "model", "results"):
        assert result[key] == command[key], key
    assert [r["name"] for r in result["results"]] == ["adaptive.conf", "immediate.conf"]


def test_check_mode_replays_too(files, capsys) -> None:
    args = {"inputs": [str(files / "*.csv")], "conf": [str(files / "adaptive.conf")], "price": 1.0}
    normal = run_module(capsys, args)
    checked = run_module(capsys, dict(args, _ansible_check_mode=True))
    assert checked["results"] == normal["results"] and checked["changed"] is False
    assert normal["inputs"] == [str(files / "t.csv")]  # the glob, expanded
    result = normal["results"][0]
    assert result["dollars"] == pytest.approx(result["slave_hours"] * 1.0)  # price over spot_bid


@pytest.mark.parametrize(
    "options, message",
    [
        ({"boot_min": 240, "boot_max": 60}, "boot_min, boot_max: must be 0 < MIN <= MAX <= 3600"),
        ({"boot_min": 0}, "boot_min, boot_max: must be 0 < MIN <= MAX <= 3600"),
        ({"pending": 100}, "pending: must be between 0 and the shortest boot"),
        ({"launch_failure": 1.0}, "launch_failure: must be in [0, 1)"),
        ({"never_ready": -0.1}, "never_ready: must be in [0, 1)"),
        ({"reclaims": 2}, "reclaims: must be in [0, 1)"),
        ({"price": -1}, "price: must be a non-negative number"),
        ({"price": float("nan")}, "price: must be a non-negative number"),
        ({"inputs": []}, "inputs: at least one log or CSV file"),
        ({"conf": []}, "conf: at least one aws_balancer.conf"),
    ],
)
def test_bad_options_name_the_option(files, capsys, options, message) -> None:
    args = dict({"inputs": [str(files / "t.csv")], "conf": [str(files / "adaptive.conf")]}, **options)
    result = run_module(capsys, args)
    assert result["failed"] and message in result["msg"]
    assert message in result["errors"]


def test_every_bad_option_at_once(files, capsys) -> None:
    args = {"inputs": [str(files / "t.csv")], "conf": [str(files / "adaptive.conf")], "pending": -1, "reclaims": 1}
    result = run_module(capsys, args)
    assert result["errors"] == ["pending: must be between 0 and the shortest boot", "reclaims: must be in [0, 1)"]


@pytest.mark.parametrize(
    "inputs, conf, message",
    [
        (["missing.log"], "adaptive.conf", "missing.log: No such file or directory"),
        (["t.csv"], "missing.conf", "missing.conf"),
        (["bad.conf"], "adaptive.conf", "bad.conf: no line could be read as a request"),
    ],
)
def test_unreadable_inputs_fail_with_the_file(files, capsys, inputs, conf, message) -> None:
    (files / "bad.conf").write_text("[MASTER]\nscaling_policy = adaptive\nsomething else\n")
    args = {"inputs": [str(files / i) for i in inputs], "conf": [str(files / conf)]}
    result = run_module(capsys, args)
    assert result["failed"] and message in result["msg"] and "Traceback" not in result["msg"]


def test_bad_conf_names_the_line(files, capsys) -> None:
    (files / "a.conf").write_text(CONF.format(policy="fastest"))
    result = run_module(capsys, {"inputs": [str(files / "t.csv")], "conf": [str(files / "a.conf")]})
    assert result["failed"] and "a.conf:4" in result["msg"]


def test_skipped_lines_are_warned(files, capsys) -> None:
    (files / "some-bad.csv").write_text("".join(f"{i},1\n" for i in range(200)) + "oops\n")
    result = run_module(capsys, {"inputs": [str(files / "some-bad.csv")], "conf": [str(files / "adaptive.conf")]})
    assert result["skipped_lines"] == 1
    # each warning names FILE:LINE (their shape differs between ansible-core versions)
    assert "some-bad.csv:201: expected" in json.dumps(result["warnings"])
