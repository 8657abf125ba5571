# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""balancer_conf_info's arguments: no path (GBrowse's layout only), a path, a hostname; what it never shows.

GBrowse's layout is replaced by a fixed one (finding it is
tests/unit/plugins/module_utils/test_gbrowse_layout.py), so no Perl runs here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import GBrowseLayout
from ansible_collections.gmod.gbrowse_aws.plugins.modules import balancer_conf_info

SEED = Path(__file__).resolve().parents[1] / "module_utils" / "fixtures" / "seed.conf"
LAYOUT = GBrowseLayout("/etc/gbrowse2", "test", "/var/lib/gbrowse2/databases", "test")


@pytest.fixture(autouse=True)
def layout(monkeypatch):
    monkeypatch.setattr(balancer_conf_info, "find_layout", lambda: LAYOUT)


def test_without_a_path_it_gives_gbrowse_layout_only(run):
    out = run(balancer_conf_info.main, {})
    assert not out.failed, out.msg
    assert out.result == {"changed": False, "path": "/etc/gbrowse2/aws_balancer.conf", "gbrowse": LAYOUT.as_dict()}


def test_ansible_refuses_an_unknown_option_naming_it(run):
    out = run(balancer_conf_info.main, {"path": str(SEED), "section": "SLAVE"})
    assert out.refused("section"), out.msg


def test_a_bad_conf_gives_file_and_line_and_the_layout(run, tmp_path):
    conf = tmp_path / "aws_balancer.conf"
    conf.write_text(SEED.read_text().replace("spot_bid          = 0.10", "spot_bid          = cheap"))
    out = run(balancer_conf_info.main, {"conf": str(conf)})
    assert out.failed
    assert out.msg.startswith(f"{conf}:") and "spot_bid" in out.msg, out.msg
    assert out.result["gbrowse"] == LAYOUT.as_dict()


def test_a_missing_conf_is_named(run, tmp_path):
    out = run(balancer_conf_info.main, {"path": str(tmp_path / "none.conf")})
    assert out.failed and str(tmp_path / "none.conf") in out.msg


@pytest.mark.parametrize("check_mode", [False, True])
def test_it_reads_alike_in_check_mode_and_touches_nothing(run, tmp_path, check_mode):
    conf = tmp_path / "aws_balancer.conf"
    shutil.copyfile(SEED, conf)
    out = run(balancer_conf_info.main, {"path": str(conf), "hostname": "master1"}, check_mode=check_mode)
    assert not out.failed, out.msg
    assert out.result["changed"] is False and out.result["hostname"] == "master1"
    assert out.result["slave"]["region"] == "us-west-2" and out.result["load_table"][0] == {"threshold": 0.1, "min": 0, "max": 1}
    assert out.result["master"]["renderfarm_conf"].startswith("/etc/gbrowse2/")
    assert conf.read_bytes() == SEED.read_bytes() and [p.name for p in tmp_path.iterdir()] == [conf.name]


def test_the_status_url_password_is_masked(run, tmp_path):
    conf = tmp_path / "aws_balancer.conf"
    conf.write_text(SEED.read_text().replace("http://localhost/server-status", "http://watch:s3cret-Pa55@localhost/server-status"))
    out = run(balancer_conf_info.main, {"path": str(conf)})
    assert not out.failed, out.msg
    assert out.result["master"]["server_status_url"] == "http://watch:***@localhost/server-status"
    assert "s3cret-Pa55" not in repr(out.result)


# -- region: the daemon's rule (_ec2.region_and_source), which the sync playbooks read --------------------


class _FakeMetadata:
    """An instance metadata service that answers (on EC2) or not, without any network."""

    answers = True

    def available(self):
        return self.answers

    @property
    def region(self):
        return "eu-central-1" if self.answers else None


@pytest.fixture
def no_region_conf(tmp_path, monkeypatch, aws_files):  # pylint: disable=unused-argument
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    conf = tmp_path / "aws_balancer.conf"
    conf.write_text("".join(line for line in SEED.read_text().splitlines(True) if not line.startswith("region")))
    return conf


@pytest.mark.parametrize(
    "env, on_ec2, args, expected",
    [
        ({"AWS_CONFIG_FILE": "/nonexistent/aws-config"}, False, {}, ("us-east-1", "default")),
        ({}, False, {}, ("ap-south-1", "AWS config")),
        ({"AWS_PROFILE": "lab"}, False, {}, ("eu-west-3", "AWS config")),
        ({"AWS_PROFILE": "lab", "AWS_DEFAULT_REGION": "ca-central-1"}, False, {}, ("ca-central-1", "AWS config")),
        ({"AWS_REGION": "eu-north-1", "AWS_PROFILE": "lab"}, False, {}, ("eu-north-1", "AWS_REGION")),
        ({"AWS_REGION": "eu-north-1"}, True, {}, ("eu-central-1", "instance metadata")),  # the master's, as the daemon
        ({"AWS_REGION": "eu-north-1"}, True, {"instance_metadata": False}, ("eu-north-1", "AWS_REGION")),
    ],
)
def test_the_region_is_the_daemons(run, monkeypatch, no_region_conf, env, on_ec2, args, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_FakeMetadata, "answers", on_ec2)
    monkeypatch.setattr(balancer_conf_info, "InstanceMetadata", _FakeMetadata)
    out = run(balancer_conf_info.main, dict({"path": str(no_region_conf)}, **args))
    assert not out.failed, out.msg
    assert out.result["slave"]["region"] is None
    assert (out.result["region"], out.result["region_from"]) == expected


def test_the_conf_region_wins_and_no_metadata_is_asked(run, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setattr(balancer_conf_info, "InstanceMetadata", lambda: pytest.fail("instance metadata asked"))
    out = run(balancer_conf_info.main, {"path": str(SEED)})
    assert (out.result["region"], out.result["region_from"]) == ("us-west-2", "conf")


def test_a_broken_aws_config_is_a_warning_not_a_failure(run, monkeypatch, no_region_conf):
    warned = []
    monkeypatch.setattr(balancer_conf_info.AnsibleModule, "warn", lambda self, text: warned.append(text))
    monkeypatch.setenv("AWS_PROFILE", "nope")
    out = run(balancer_conf_info.main, {"path": str(no_region_conf)})
    assert not out.failed, out.msg
    assert out.result["region"] is None and out.result["region_from"] is None
    assert warned and warned[0].startswith("region: AWS configuration: The config profile (nope) could not be found")
