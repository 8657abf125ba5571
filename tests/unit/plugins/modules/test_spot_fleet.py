# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spot_fleet's arguments and check mode, with no AWS at all.

The boto3 client is never made (``AnsibleAWSModule.client`` gives a stand-in)
and the module's EC2 facade is a fake that records every call, so a test sees
whether anything would have been launched or terminated. The module against
moto is tests/integration/targets/spot_fleet.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, Image, Instance, LaunchResult
from ansible_collections.gmod.gbrowse_aws.plugins.modules import spot_fleet

SEED = Path(__file__).resolve().parents[1] / "module_utils" / "fixtures" / "seed.conf"
SECRET = "gbrowse-unit-dummy-secret-0b9d"
READ_ONLY = {"describe_fleet", "owns_template_or_group"}


class FakeEC2:
    """The facade's surface that spot_fleet and _fleet use; nothing leaves this object."""

    made: list[FakeEC2] = []
    instances: list[Instance] = []

    def __init__(self, client, balancer_id):
        self.client, self.balancer_id, self.calls = client, balancer_id, []
        FakeEC2.made.append(self)

    @property
    def name(self):
        return f"gbrowse-slave-{self.balancer_id}"

    def _call(self, name, *args):
        self.calls.append((name, *args))

    def describe_fleet(self):
        self._call("describe_fleet")
        return list(FakeEC2.instances)

    def owns_template_or_group(self):
        self._call("owns_template_or_group")
        return True

    def terminate(self, ids):
        self._call("terminate", list(ids))
        return list(ids)

    def resolve_image(self, ref):
        self._call("resolve_image", ref)
        return Image(id="ami-04681a1dbd79675a5", name=ref, root_device_name="/dev/xvda", block_device_mappings=())

    def ensure_security_group(self, vpc_id, ports, ssh=False, **source):
        self._call("ensure_security_group", vpc_id)
        return "sg-0123456789abcdef0"

    def launch(self, count, spec):
        self._call("launch", count)
        return LaunchResult(tuple(f"i-new{n}" for n in range(count)))

    def delete_launch_template(self):
        self._call("delete_launch_template")
        return True

    def delete_security_group(self):
        self._call("delete_security_group")
        return True

    def writes(self):
        return [call for call in self.calls if call[0] not in READ_ONLY]


class FakeMetadata:
    def __init__(self, *args, **kwargs):
        raise AssertionError("instance metadata asked for in a unit test")


@pytest.fixture(autouse=True)
def no_aws(monkeypatch, tmp_path):
    FakeEC2.made, FakeEC2.instances = [], []
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(spot_fleet.AnsibleAWSModule, "client", lambda self, service, **extra: ("client", service))
    monkeypatch.setattr(spot_fleet, "EC2", FakeEC2)
    monkeypatch.setattr(spot_fleet, "InstanceMetadata", FakeMetadata)
    monkeypatch.setattr(spot_fleet.time, "sleep", lambda seconds: None)


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    path.write_text(SEED.read_text().replace("external_ip       =", "external_ip       = 198.51.100.7"))
    return str(path)


def _args(**kwargs):
    return dict({"instance_metadata": False, "region": "us-west-2"}, **kwargs)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"count": 1}, ["conf", "balancer_id"]),
        ({"balancer_id": "b1", "count": 1}, ["state", "present", "conf"]),
        ({"conf": "C", "count": 1, "min": 0, "max": 1}, ["count", "min"]),
        ({"conf": "C", "min": 1}, ["min", "max"]),
        ({"conf": "C"}, ["count", "min"]),
        ({"conf": "C", "count": 1, "state": "running"}, ["state", "present", "absent"]),
        ({"conf": "C", "count": "two"}, ["count"]),
        ({"conf": "C", "count": 1, "wait": "soon"}, ["wait"]),
        ({"conf": "C", "count": 1, "image_id": "ami-1"}, ["image_id"]),
    ],
    ids=["conf-or-id", "present-needs-conf", "count-xor-min", "min-with-max", "count-or-min", "state-choices",
         "count-an-int", "wait-a-bool", "unknown"],
)
def test_ansible_refuses_the_arguments_naming_them(run, conf, args, words):
    if args.get("conf") == "C":
        args = dict(args, conf=conf)
    out = run(spot_fleet.main, _args(**args))
    assert out.refused(*words), out.msg
    assert FakeEC2.made == []


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({"count": -1}, "count: must be 0 or more, not -1"),
        ({"min": -1, "max": 2}, "min: must be 0 or more, not -1"),
        ({"min": 3, "max": 2}, "max: 2 is less than min 3"),
        ({"count": 1, "wait_timeout": 0}, "wait_timeout: must be a positive number of seconds, not 0"),
    ],
    ids=["count", "min", "max-below-min", "wait-timeout"],
)
def test_the_module_refuses_values_naming_the_option(run, conf, args, msg):
    out = run(spot_fleet.main, _args(conf=conf, **args))
    assert out.failed and out.msg == msg
    assert FakeEC2.made == []


def test_a_bad_conf_gives_file_and_line(run, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text(SEED.read_text().replace("ports             = 8101", "ports             = http"))
    out = run(spot_fleet.main, _args(conf=str(bad), count=1))
    assert out.failed and out.msg.startswith(f"{bad}:") and "ports" in out.msg, out.msg
    assert FakeEC2.made == []


def test_a_bad_balancer_id_is_named(run, monkeypatch):
    monkeypatch.setattr(spot_fleet, "EC2", EC2)  # the real facade checks the id before it uses the client
    out = run(spot_fleet.main, _args(balancer_id="not a valid id!", state="absent"))
    assert out.failed and out.msg.startswith("balancer_id: invalid balancer id 'not a valid id!'"), out.msg


def test_the_aws_secrets_are_no_log(run, conf):
    out = run(spot_fleet.main, _args(conf=conf, count=0, access_key="AKIAGBROWSEUNIT00000", secret_key=SECRET,
                                     session_token=SECRET + "-token", key_name="slaves-key"), check_mode=True)
    assert not out.failed, out.msg
    assert {SECRET, SECRET + "-token"} <= out.module.no_log_values
    assert out.logged and not any(SECRET in line for line in out.logged)
    # key_name names a key pair, it is no secret (no_log=False): it shows.
    assert "slaves-key" not in out.module.no_log_values


@pytest.mark.parametrize(("count", "launch"), [(2, 2), (0, 0)])
def test_check_mode_plans_and_launches_nothing(run, conf, count, launch):
    out = run(spot_fleet.main, _args(conf=conf, count=count), check_mode=True)
    assert not out.failed, out.msg
    assert out.result["plan"]["launch"] == launch and out.result["changed"] is bool(launch)
    assert out.result["launched"] == []
    assert FakeEC2.made[0].writes() == []


def test_without_check_mode_the_same_run_launches(run, conf):
    """The fake would see a launch: the check-mode test above can fail."""
    out = run(spot_fleet.main, _args(conf=conf, count=2))
    assert not out.failed, out.msg
    assert out.result["launched"] == ["i-new0", "i-new1"]
    assert ("launch", 2) in FakeEC2.made[0].writes()


def _running():
    return [Instance("i-0abc", "running", 0.0, "10.0.0.5", None, "vpc-1", "subnet-1", "m5.large", "spot")]


def test_check_mode_absent_terminates_nothing(run):
    FakeEC2.instances = _running()
    out = run(spot_fleet.main, _args(balancer_id="b1", state="absent"), check_mode=True)
    assert not out.failed, out.msg
    assert out.result["changed"] and out.result["terminated"] == ["i-0abc"]
    assert FakeEC2.made[0].writes() == []


def test_without_check_mode_absent_terminates_and_deletes(run):
    FakeEC2.instances = _running()
    out = run(spot_fleet.main, _args(balancer_id="b1", state="absent"))
    assert not out.failed, out.msg
    writes = [call[0] for call in FakeEC2.made[0].writes()]
    assert writes[0] == "terminate" and "delete_launch_template" in writes and "delete_security_group" in writes


@pytest.mark.parametrize(
    ("region", "conf_region", "expected"),
    [
        ("eu-north-1", True, None),  # the region option (or AWS_REGION, which amazon.aws reads for it) is the client's
        (None, True, "us-west-2"),  # else the daemon's rule: the conf's [SLAVE] region ...
        (None, False, "us-east-1"),  # ... and, with no region anywhere, us-east-1 as the daemon
    ],
)
def test_without_a_region_option_the_region_is_the_daemons(run, monkeypatch, conf, region, conf_region, expected):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    if not conf_region:
        Path(conf).write_text("".join(line for line in Path(conf).read_text().splitlines(True) if not line.startswith("region")))
    made = []
    monkeypatch.setattr(spot_fleet.AnsibleAWSModule, "client", lambda self, service, **extra: made.append(extra) or ("client", service))
    out = run(spot_fleet.main, dict(_args(conf=conf, count=0), region=region), check_mode=True)
    assert not out.failed, out.msg
    assert made and made[0].get("region") == expected
