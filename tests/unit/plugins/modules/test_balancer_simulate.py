# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""balancer_simulate's arguments: checked as the command checks them, messages that name the option or
FILE:LINE, check mode, and the command's own figures.

The replay itself is tests/unit/plugins/module_utils/test_simulate.py.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.common.warnings import get_warning_messages

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import balancer_main
from ansible_collections.gmod.gbrowse_aws.plugins.modules import balancer_simulate
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_simulate import CONF


@pytest.fixture(name="files")
def files_fixture(tmp_path):
    """A conf per policy and three quiet-busy-quiet stretches of requests per second (2 req/s while busy)."""
    for policy in ("adaptive", "immediate"):
        (tmp_path / f"{policy}.conf").write_text(CONF.format(policy=policy))
    (tmp_path / "t.csv").write_text(
        "time,requests\n" + "".join(f"{i},{2 if 600 <= i < 2400 else 0}\n" for i in range(3000))
    )
    return tmp_path


def test_same_figures_as_the_command(run, files, capsys) -> None:
    confs = [str(files / "adaptive.conf"), str(files / "immediate.conf")]
    argv = ["simulate", str(files / "t.csv"), "--json", "--seed", "3"]
    assert balancer_main(argv + [x for c in confs for x in ("--conf", c)]) == 0
    command = json.loads(capsys.readouterr().out)
    out = run(balancer_simulate.main, {"inputs": [str(files / "t.csv")], "conf": confs, "seed": 3})
    assert not out.failed and out.result["changed"] is False
    for key in ("inputs", "start", "seconds", "lines", "skipped_lines", "requests", "model", "results"):
        assert out.result[key] == command[key], key
    assert [r["name"] for r in out.result["results"]] == ["adaptive.conf", "immediate.conf"]


def test_check_mode_replays_too(run, files) -> None:
    args = {"inputs": [str(files / "*.csv")], "conf": [str(files / "adaptive.conf")], "price": 1.0}
    normal = run(balancer_simulate.main, args)
    checked = run(balancer_simulate.main, args, check_mode=True)
    assert checked.result["results"] == normal.result["results"] and checked.result["changed"] is False
    assert normal.result["inputs"] == [str(files / "t.csv")]  # the glob, expanded
    figures = normal.result["results"][0]
    assert figures["slave_hours"] > 0 and figures["dollars"] == pytest.approx(figures["slave_hours"] * 1.0)


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
def test_bad_options_name_the_option(run, files, options, message) -> None:
    args = dict({"inputs": [str(files / "t.csv")], "conf": [str(files / "adaptive.conf")]}, **options)
    out = run(balancer_simulate.main, args)
    assert out.refused(message) and message in out.result["errors"]


def test_every_bad_option_at_once(run, files) -> None:
    args = {"inputs": [str(files / "t.csv")], "conf": [str(files / "adaptive.conf")], "pending": -1, "reclaims": 1}
    out = run(balancer_simulate.main, args)
    assert out.result["errors"] == ["pending: must be between 0 and the shortest boot", "reclaims: must be in [0, 1)"]


@pytest.mark.parametrize(
    "args, words",
    [
        ({"conf": ["a.conf"]}, ["inputs"]),
        ({"inputs": ["t.csv"]}, ["conf"]),
        ({"inputs": ["t.csv"], "conf": ["a.conf"], "seed": "one"}, ["seed"]),
        ({"inputs": ["t.csv"], "conf": ["a.conf"], "plot": "p.png"}, ["plot"]),
    ],
    ids=["inputs-required", "conf-required", "seed-an-int", "no-plot"],
)
def test_ansible_refuses_the_arguments_naming_them(run, args, words) -> None:
    out = run(balancer_simulate.main, args)
    assert out.refused(*words), out.msg


@pytest.mark.parametrize(
    "inputs, conf, message",
    [
        (["missing.log"], "adaptive.conf", "missing.log: No such file or directory"),
        (["t.csv"], "missing.conf", "missing.conf"),
        (["bad.conf"], "adaptive.conf", "bad.conf: no line could be read as a request"),
    ],
)
def test_unreadable_inputs_fail_with_the_file(run, files, inputs, conf, message) -> None:
    (files / "bad.conf").write_text("[MASTER]\nscaling_policy = adaptive\nsomething else\n")
    out = run(balancer_simulate.main, {"inputs": [str(files / i) for i in inputs], "conf": [str(files / conf)]})
    assert out.refused(message) and "Traceback" not in out.msg


def test_bad_conf_names_the_line(run, files) -> None:
    (files / "a.conf").write_text(CONF.format(policy="fastest"))
    out = run(balancer_simulate.main, {"inputs": [str(files / "t.csv")], "conf": [str(files / "a.conf")]})
    assert out.refused("a.conf:4")


def test_skipped_lines_are_counted_and_warned(run, files) -> None:
    (files / "some-bad.csv").write_text("".join(f"{i},1\n" for i in range(200)) + "oops\n")
    out = run(balancer_simulate.main, {"inputs": [str(files / "some-bad.csv")], "conf": [str(files / "adaptive.conf")]})
    assert out.result["skipped_lines"] == 1
    assert any("some-bad.csv:201: expected" in w for w in get_warning_messages())
