# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""load_decision's arguments: the exclusive pairs, the ranges, and messages that name the option or row.

The decision itself is tests/unit/plugins/module_utils/test_decision.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.modules import load_decision

SEED = Path(__file__).resolve().parents[1] / "module_utils" / "fixtures" / "seed.conf"
TABLE = [{"threshold": 0.5, "min": 0, "max": 2}, {"threshold": 2.0, "min": 1, "max": 4}]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"table": TABLE}, ["load"]),
        ({"load": 1}, ["conf", "table"]),
        ({"load": 1, "table": TABLE, "conf": str(SEED)}, ["conf", "table"]),
        ({"load": 1, "table": TABLE, "fleet": [], "counts": {}}, ["fleet", "counts"]),
        ({"load": "busy", "table": TABLE}, ["load"]),
        ({"load": 1, "table": [{"threshold": 0.5, "max": 2}]}, ["min"]),
        ({"load": 1, "table": TABLE, "counts": {"idle": 1}}, ["idle"]),
    ],
    ids=["load-required", "conf-or-table", "conf-xor-table", "fleet-xor-counts", "load-a-number", "row-needs-min",
         "counts-keys"],
)
def test_ansible_refuses_the_arguments_naming_them(run, args, words):
    out = run(load_decision.main, args)
    assert out.refused(*words), out.msg


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ({"load": -1}, "load: must be a number of requests per second, 0 or more"),
        ({"load": "nan"}, "load: must be a number"),
        ({"load": 1, "max_launch": -1}, "max_launch: must be from 0 to"),
        ({"load": 1, "counts": {"ready": -2}}, "counts.ready: must be from 0 to"),
        ({"load": 1, "fleet": [{"state": "ready"}]}, "fleet[0].id: required"),
        ({"load": 1, "fleet": [{"id": "i-1", "state": "asleep"}]}, "fleet[0].state: 'asleep' is not one of"),
        ({"load": 1, "fleet": [{"id": "i-1", "ready": "maybe"}]}, "fleet[0].ready: 'maybe' is not a boolean"),
        ({"load": 1, "fleet": [{"id": "i-1"}, {"id": "i-2", "launched": "yesterday"}]}, "fleet[1].launched: 'yesterday' is not a number"),
    ],
    ids=["negative-load", "nan-load", "max-launch", "counts-range", "fleet-id", "fleet-state", "fleet-ready",
         "fleet-launched"],
)
def test_the_module_refuses_values_naming_the_option(run, args, start):
    out = run(load_decision.main, dict(args, table=TABLE))
    assert out.failed
    assert out.msg.startswith(start), out.msg


def test_a_bad_table_row_is_named_by_its_number(run):
    table = [{"threshold": 2.0, "min": 0, "max": 2}, {"threshold": 1.0, "min": 3, "max": 1}]
    out = run(load_decision.main, {"load": 1, "table": table})
    assert out.failed
    assert all(error.startswith(("table row 2:", "table:")) for error in out.result["errors"]), out.result["errors"]
    assert "table row 2:" in out.msg


def test_a_bad_conf_gives_file_and_line(run, tmp_path):
    conf = tmp_path / "aws_balancer.conf"
    conf.write_text(SEED.read_text().replace("0.5     0   2", "0.5     0   x"))
    out = run(load_decision.main, {"load": 1, "conf": str(conf)})
    assert out.failed
    assert out.msg.startswith(f"{conf}:"), out.msg


@pytest.mark.parametrize("check_mode", [False, True])
def test_it_decides_alike_in_check_mode(run, check_mode):
    out = run(load_decision.main, {"load": 1.0, "conf": str(SEED), "counts": {"ready": 5}}, check_mode=check_mode)
    assert not out.failed, out.msg
    assert (out.result["min"], out.result["max"], out.result["changed"]) == (1, 3, False)
    assert out.result["row"]["threshold"] == 1.0
    assert out.result["plan"]["current"] == 5 and len(out.result["plan"]["remove"]) == 2
