# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""balancer_conf's arguments: what it refuses, with a message naming the option, and what check mode leaves alone.

The edits themselves (bytes kept, backups) are tests/unit/plugins/module_utils/test_conf.py
and tests/integration/targets/balancer_conf.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.modules import balancer_conf

SEED = Path(__file__).resolve().parents[1] / "module_utils" / "fixtures" / "seed.conf"


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    shutil.copyfile(SEED, path)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"section": "SLAVE", "option": "spot_bid", "value": "0.2"}, ["path"]),
        ({}, ["option", "settings", "load_table"]),
        ({"section": "SLAVE", "option": "spot_bid", "value": "1", "settings": {"SLAVE": {"spot_bid": 1}}}, ["option", "settings"]),
        ({"option": "spot_bid", "value": "0.2"}, ["section", "option"]),
        ({"settings": {"SLAVE": {"spot_bid": 1}}, "value": "0.2"}, ["value", "option"]),
        ({"settings": {"SLAVE": {"spot_bid": 1}}, "comment": "why"}, ["comment", "option"]),
        ({"settings": {"SLAVE": {"spot_bid": 1}}, "state": "gone"}, ["state", "present", "absent"]),
        ({"load_table": [{"threshold": 1.0, "min": 0}]}, ["max"]),
        ({"load_table": [{"threshold": "lots", "min": 0, "max": 1}]}, ["threshold"]),
        ({"settings": {"SLAVE": {"spot_bid": 1}}, "backup": "perhaps"}, ["backup"]),
        ({"settings": {"SLAVE": {"spot_bid": 1}}, "no_such_option": 1}, ["no_such_option"]),
    ],
    ids=["path-required", "one-of", "option-xor-settings", "section-with-option", "value-needs-option",
         "comment-needs-option", "state-choices", "row-needs-max", "threshold-a-number", "backup-a-bool", "unknown"],
)
def test_ansible_refuses_the_arguments_naming_them(run, conf, args, words):
    args = dict(args)
    if words != ["path"]:
        args["path"] = str(conf)
    before = conf.read_bytes()
    out = run(balancer_conf.main, args)
    assert out.refused(*words), out.msg
    assert conf.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ({"section": "SLAVE", "option": "spot_bid"}, "value: required"),
        ({"section": "SLAVE", "option": "spot_bid", "comment": "c", "state": "absent"}, "comment: only with state=present"),
        ({"load_table": [{"threshold": 1.0, "min": 0, "max": 1}], "state": "absent"}, "load_table: only with state=present"),
        ({"section": "BOSS", "option": "spot_bid", "value": "1"}, "section: 'BOSS' is not MASTER or SLAVE"),
        ({"settings": {"BOSS": {"spot_bid": 1}}}, "settings: 'BOSS' is not MASTER or SLAVE"),
        ({"settings": {"SLAVE": "spot_bid"}}, "settings: SLAVE must be a dictionary"),
        ({"settings": {"SLAVE": {"spot_bid": {"comment": "no value"}}}}, "settings: SLAVE.spot_bid must be a value"),
    ],
    ids=["value-with-option", "comment-absent", "table-absent", "section-name", "settings-section", "settings-shape",
         "settings-value-dict"],
)
def test_the_module_refuses_what_ansible_cannot_say(run, conf, args, start):
    before = conf.read_bytes()
    out = run(balancer_conf.main, dict(args, path=str(conf)))
    assert out.failed
    assert out.msg.startswith(start), out.msg
    assert conf.read_bytes() == before


def test_create_false_names_the_missing_path(run, tmp_path):
    path = tmp_path / "missing.conf"
    out = run(balancer_conf.main, {"path": str(path), "create": False, "settings": {"SLAVE": {"spot_bid": 1}}})
    assert out.failed and out.msg == f"path: {path} does not exist (create=false)"
    assert not path.exists()


def test_a_bad_value_is_named_by_option_or_line(run, conf):
    out = run(balancer_conf.main, {"path": str(conf), "settings": {"SLAVE": {"spot_bid": "cheap"}}})
    assert out.failed
    assert "spot_bid" in out.msg
    assert out.msg.startswith(("settings: ", f"{conf}:")), out.msg
    assert out.result["errors"]


def test_the_dest_alias_is_path(run, conf):
    out = run(balancer_conf.main, {"dest": str(conf), "section": "SLAVE", "option": "spot_bid", "value": "0.10"})
    assert not out.failed and out.result["path"] == str(conf)


@pytest.mark.parametrize(
    "args",
    [
        {"section": "SLAVE", "option": "spot_bid", "value": "0.25"},
        {"section": "SLAVE", "option": "spot_bid", "state": "absent"},
        {"settings": {"MASTER": {"poll_interval": {"value": 2, "comment": "slower"}}}},
        {"load_table": [{"threshold": 1.0, "min": 0, "max": 2}]},
    ],
    ids=["set", "unset", "settings", "load-table"],
)
def test_check_mode_reports_the_change_and_writes_nothing(run, conf, args):
    before = conf.read_bytes()
    out = run(balancer_conf.main, dict(args, path=str(conf), backup=True), check_mode=True, diff=True)
    assert not out.failed and out.result["changed"]
    assert out.result["diff"]["before"] != out.result["diff"]["after"]
    assert conf.read_bytes() == before
    assert sorted(p.name for p in conf.parent.iterdir()) == [conf.name]


def test_check_mode_creates_no_file(run, tmp_path):
    """A whole new conf from settings alone: checked like any other, and not written in check mode."""
    path = tmp_path / "new.conf"
    settings = {"SLAVE": {"instance_type": "m5.large", "spot_bid": 0.1, "ports": [8101], "region": "us-east-1",
                          "image_id": "ami-04681a1dbd79675a5"}}
    table = [{"threshold": 1.0, "min": 0, "max": 2}]
    out = run(balancer_conf.main, {"path": str(path), "settings": settings, "load_table": table}, check_mode=True)
    assert not out.failed, out.msg
    assert out.result["changed"]
    assert list(tmp_path.iterdir()) == []


def test_a_new_conf_missing_keys_is_refused_and_not_created(run, tmp_path):
    path = tmp_path / "new.conf"
    out = run(balancer_conf.main, {"path": str(path), "settings": {"SLAVE": {"spot_bid": 1}}})
    assert out.failed and out.msg.startswith(f"{path}:"), out.msg
    assert list(tmp_path.iterdir()) == []


def test_the_status_url_password_shows_masked_in_the_diff(run, conf):
    secret = "s3cret-Pa55"
    out = run(
        balancer_conf.main,
        {"path": str(conf), "section": "MASTER", "option": "server_status_url",
         "value": f"http://watch:{secret}@localhost/server-status"},
        check_mode=True, diff=True,
    )
    assert not out.failed and out.result["changed"]
    assert secret not in repr(out.result)
    assert "http://watch:***@localhost/server-status" in out.result["diff"]["after"]


def test_a_refused_status_url_shows_its_password_masked(run, conf):
    secret = "s3cret-Pa55"
    out = run(balancer_conf.main, {"path": str(conf), "section": "MASTER", "option": "server_status_url",
                                   "value": f"ftp://watch:{secret}@localhost/server-status"})
    assert out.failed and "server_status_url" in out.msg
    assert secret not in repr(out.result) and "ftp://watch:***@localhost/server-status" in out.msg
