# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EC2 adapter's pure half (plugins/module_utils/_ec2_data.py): answers in, dataclasses and requests out.

Plain tables: no boto3, no botocore stubs, no network. The user data and the
block device mappings are tested in test_ec2_unit.py (and run in a shell there).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import os
import subprocess
import sys
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import (
    BALANCER_TAG,
    GENERATION_TAG,
    NAME_TAG_VALUE,
    Image,
    Instance,
    LaunchResult,
    LaunchSpec,
    Subnet,
    carries,
    comparable,
    default_user_data,
    fleet_errors,
    fleet_of,
    fleet_request,
    image_of,
    ingress_rules,
    instance_of,
    ip_permissions,
    launch_result,
    newest_image,
    our_tags,
    permissions_of,
    price,
    subnet_of,
    tag_filter,
    tags_of,
    template_data,
    template_vanished,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_errors import CapacityError, EC2Error

WHEN = datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc)
OURS = [{"Key": BALANCER_TAG, "Value": "unit"}, {"Key": "Name", "Value": NAME_TAG_VALUE}]
SPEC = LaunchSpec(image_id="ami-1", instance_types=("m5.large",), spot_bid=0.08, ports=(8101,))
IMAGE = Image("ami-1", "GBrowse", "/dev/xvda")


# -- tags ------------------------------------------------------------------


def test_tags() -> None:
    assert our_tags("unit") == OURS
    assert our_tags("unit", name=False) == OURS[:1]
    assert tag_filter("unit") == {"Name": f"tag:{BALANCER_TAG}", "Values": ["unit"]}
    assert tags_of(None) == {} and tags_of([{"Key": "a"}]) == {"a": ""}
    assert tags_of(OURS) == {BALANCER_TAG: "unit", "Name": NAME_TAG_VALUE}


@pytest.mark.parametrize(
    "raw, ours",
    [
        ({"Tags": OURS}, True),
        ({"Tags": [{"Key": BALANCER_TAG, "Value": "unit2"}]}, False),
        ({"Tags": [{"Key": "Name", "Value": NAME_TAG_VALUE}]}, False),
        ({}, False),
    ],
)
def test_carries_only_our_own_id(raw: dict[str, t.Any], ours: bool) -> None:
    assert carries(raw, "unit") is ours


# -- answers -> dataclasses ---------------------------------------------------


def test_instance_of_a_full_answer() -> None:
    raw = {
        "InstanceId": "i-1",
        "State": {"Name": "running"},
        "LaunchTime": WHEN,
        "PrivateIpAddress": "10.0.0.5",
        "PublicIpAddress": "",
        "VpcId": "vpc-1",
        "SubnetId": "subnet-1",
        "InstanceType": "m5.large",
        "InstanceLifecycle": "spot",
        "Tags": OURS,
        "Placement": {"AvailabilityZone": "us-west-2a"},
        "ImageId": "ami-1",
        "StateReason": {"Code": "Server.SpotInstanceTermination"},
    }
    assert instance_of(raw) == Instance(
        id="i-1",
        state="running",
        launched=WHEN.timestamp(),
        private_ip="10.0.0.5",
        public_ip=None,
        vpc_id="vpc-1",
        subnet_id="subnet-1",
        instance_type="m5.large",
        lifecycle="spot",
        tags={BALANCER_TAG: "unit", "Name": NAME_TAG_VALUE},
        availability_zone="us-west-2a",
        image_id="ami-1",
        state_reason="Server.SpotInstanceTermination",
    )


def test_instance_of_a_bare_answer() -> None:
    assert instance_of({"InstanceId": "i-1"}) == Instance("i-1", "unknown", 0.0, None, None, None, None, None, None)


def test_fleet_of_keeps_ours_not_terminated_oldest_first() -> None:
    def raw(iid: str, minutes: int, tags: list[dict[str, str]] | None = None, state: str = "running") -> dict[str, t.Any]:
        tags = OURS if tags is None else tags
        when = WHEN + datetime.timedelta(minutes=minutes)
        return {"InstanceId": iid, "State": {"Name": state}, "LaunchTime": when, "Tags": tags}

    pages = [
        {"Reservations": [{"Instances": [raw("i-3", 3), raw("i-stranger", 0, tags=[])]}]},
        {"Reservations": [{"Instances": [raw("i-1", 1), raw("i-gone", 0, state="terminated")]}, {}]},
        {"Reservations": [{"Instances": [raw("i-2", 1, state="shutting-down")]}]},
        {},
    ]
    assert [(i.id, i.state) for i in fleet_of(pages, "unit")] == [
        ("i-1", "running"),
        ("i-2", "shutting-down"),
        ("i-3", "running"),
    ]
    assert fleet_of(pages, "someone-else") == []


def test_image_of_defaults_to_xvda() -> None:
    assert image_of({"ImageId": "ami-1"}) == Image("ami-1", None, "/dev/xvda", (), None)
    mappings = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}]
    image = image_of({"ImageId": "ami-2", "Name": "n", "RootDeviceName": "/dev/sda1", "BlockDeviceMappings": mappings})
    assert image == Image("ami-2", "n", "/dev/sda1", ({"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},))


@pytest.mark.parametrize(
    "images, newest",
    [
        ([{"ImageId": "ami-a", "CreationDate": "2020"}, {"ImageId": "ami-b", "CreationDate": "2024"}], "ami-b"),
        (
            [
                {"ImageId": "ami-a", "CreationDate": "2024", "Name": "y"},
                {"ImageId": "ami-b", "CreationDate": "2024", "Name": "x"},
            ],
            "ami-a",
        ),
        ([{"ImageId": "ami-a"}, {"ImageId": "ami-b"}], "ami-b"),  # same date and name: the id decides
        ([{"ImageId": "ami-a", "CreationDate": "2001"}, {"ImageId": "ami-b"}], "ami-a"),
    ],
)
def test_newest_image(images: list[dict[str, str]], newest: str) -> None:
    assert newest_image(images).id == newest


def test_subnet_of() -> None:
    raw = {"SubnetId": "subnet-1", "VpcId": "vpc-1", "AvailabilityZone": "us-west-2a", "CidrBlock": "10.0.0.0/24"}
    assert subnet_of(raw) == Subnet("subnet-1", "vpc-1", "us-west-2a", "10.0.0.0/24")
    assert subnet_of({"SubnetId": "subnet-2", "VpcId": "vpc-1"}) == Subnet("subnet-2", "vpc-1", None, None)


# -- launch template data ---------------------------------------------------------


def test_template_data_carries_our_tags_and_the_default_user_data() -> None:
    data = template_data(SPEC, IMAGE, "unit")
    assert data["ImageId"] == "ami-1"
    assert data["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": OURS},
        {"ResourceType": "volume", "Tags": OURS},
    ]
    assert base64.b64decode(data["UserData"]).decode() == default_user_data((8101,))
    assert "SecurityGroupIds" not in data and "KeyName" not in data


def test_template_data_tags_slaves_and_volumes_with_the_data_generation() -> None:
    data = template_data(dataclasses.replace(SPEC, generation="0123abcd4567"), IMAGE, "unit")
    generation = {"Key": GENERATION_TAG, "Value": "0123abcd4567"}
    assert data["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [*OURS, generation]},
        {"ResourceType": "volume", "Tags": [*OURS, generation]},
    ]
    # A new generation is new template data: the launch template gets a version.
    assert comparable(data) != comparable(template_data(dataclasses.replace(SPEC, generation="other"), IMAGE, "unit"))


def test_template_data_with_user_data_groups_and_key() -> None:
    spec = LaunchSpec("ami-1", ("m5.large",), 0.1, (8101,), security_group_ids=("sg-1",), key_name="k", user_data="#!x")
    data = template_data(spec, IMAGE, "unit")
    assert base64.b64decode(data["UserData"]) == b"#!x"
    assert (data["SecurityGroupIds"], data["KeyName"]) == (["sg-1"], "k")


@pytest.mark.parametrize(
    "a, b, equal",
    [
        ({"X": [1, 2]}, {"X": [2, 1]}, True),  # list order does not count
        ({"X": [{"a": 1}, {"b": 2}]}, {"X": [{"b": 2}, {"a": 1}]}, True),
        ({"X": 1, "Y": None}, {"X": 1}, True),  # None is no value
        ({"X": 1}, {"X": 2}, False),
        (  # EC2 adds the launch template's own tags: not ours to compare
            {"TagSpecifications": [{"ResourceType": "instance", "Tags": OURS}]},
            {"TagSpecifications": [{"ResourceType": "instance", "Tags": OURS}, {"ResourceType": "launch-template"}]},
            True,
        ),
        (
            {"TagSpecifications": [{"ResourceType": "instance", "Tags": OURS}]},
            {"TagSpecifications": [{"ResourceType": "volume", "Tags": OURS}]},
            False,
        ),
    ],
)
def test_comparable_template_data(a: dict[str, t.Any], b: dict[str, t.Any], equal: bool) -> None:
    assert (comparable(a) == comparable(b)) is equal


# -- CreateFleet ------------------------------------------------------------------


@pytest.mark.parametrize("bid, text", [(0.08, "0.08"), (1.0, "1"), (0.1234567, "0.123457"), (12.5, "12.5")])
def test_price(bid: float, text: str) -> None:
    assert price(bid) == text


def test_fleet_request_is_tagged_with_the_balancer_id() -> None:
    request = fleet_request(2, SPEC, "lt-1", 3, "unit")
    assert request["TagSpecifications"] == [{"ResourceType": "fleet", "Tags": OURS[:1]}]
    assert request["LaunchTemplateConfigs"][0]["LaunchTemplateSpecification"] == {
        "LaunchTemplateId": "lt-1",
        "Version": "3",
    }
    assert request["TargetCapacitySpecification"]["TotalTargetCapacity"] == 2


def _answer(ids: t.Sequence[str] = (), errors: t.Sequence[tuple[str, str]] = ()) -> dict[str, t.Any]:
    return {
        "FleetId": "fleet-1",
        "Instances": [{"InstanceIds": list(ids)}] if ids else [],
        "Errors": [{"ErrorCode": c, "ErrorMessage": m} for c, m in errors],
    }


@pytest.mark.parametrize(
    "answer, vanished",
    [
        (_answer(errors=[("InvalidLaunchTemplateId.NotFound", "gone")]), True),
        (_answer(errors=[("InvalidLaunchTemplateName.NotFoundException", "gone")]), True),
        (
            _answer(errors=[("InsufficientInstanceCapacity", "no"), ("InvalidLaunchTemplateId.VersionNotFound", "")]),
            True,
        ),
        (_answer(["i-1"], errors=[("InvalidLaunchTemplateId.NotFound", "gone")]), False),  # it launched: not gone
        (_answer(errors=[("InvalidGroup.NotFound", "gone")]), False),  # a new template would not help
        (_answer(errors=[("InsufficientInstanceCapacity", "no")]), False),
        ({}, False),
    ],
)
def test_template_vanished(answer: dict[str, t.Any], vanished: bool) -> None:
    assert template_vanished(answer) is vanished


def test_fleet_errors_default_code() -> None:
    assert fleet_errors({"Errors": [{"ErrorMessage": "?"}, {"ErrorCode": "X"}]}) == (("Unknown", "?"), ("X", ""))


def test_launch_result_partial_launch_is_no_error() -> None:
    answer = _answer(["i-1", "i-2", "i-1"], [("InsufficientInstanceCapacity", "no c5")])
    assert launch_result(3, answer) == LaunchResult(
        ("i-1", "i-2"), (("InsufficientInstanceCapacity", "no c5"),), "fleet-1"
    )


@pytest.mark.parametrize(
    "errors, cls, code",
    [
        ([("SpotMaxPriceTooLow", "p"), ("UnfulfillableCapacity", "u")], CapacityError, "SpotMaxPriceTooLow"),
        ([("InsufficientInstanceCapacity", "c"), ("InvalidParameterValue", "v")], EC2Error, "InvalidParameterValue"),
        ([("InvalidLaunchTemplateId.NotFound", "gone")], EC2Error, "InvalidLaunchTemplateId.NotFound"),
        ([], EC2Error, "Unknown"),
    ],
)
def test_launch_result_without_instances_raises(errors: list[tuple[str, str]], cls: type, code: str) -> None:
    with pytest.raises(EC2Error) as caught:
        launch_result(2, _answer(errors=errors))
    assert type(caught.value) is cls  # pylint: disable=unidiomatic-typecheck  # exactly, not a subclass
    assert caught.value.code == code
    assert str(caught.value).startswith("Failed to launch 2 slave(s): ")
    if cls is CapacityError:
        assert caught.value.errors == tuple(errors)  # type: ignore[attr-defined]


# -- the security group -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, rules",
    [
        (
            {"ports": [8101], "source_cidr": "10.0.0.5"},
            {("tcp", 8101, 8101, "cidr", "10.0.0.5/32")},
        ),
        (
            {"ports": [8102, 8101, 8101], "source_cidr": " 10.0.0.0/8 ", "ssh": True},
            {("tcp", p, p, "cidr", "10.0.0.0/8") for p in (22, 8101, 8102)},
        ),
        (
            {"ports": [8101], "source_cidr": "2001:db8::1", "source_group_id": "sg-m"},
            {("tcp", 8101, 8101, "cidr6", "2001:db8::1/128"), ("tcp", 8101, 8101, "group", "sg-m")},
        ),
    ],
)
def test_ingress_rules(kwargs: dict[str, t.Any], rules: set[tuple[str, int, int, str, str]]) -> None:
    assert ingress_rules(**kwargs) == rules


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ports": [8101]}, "needs a source"),
        ({"ports": [], "source_cidr": "10.0.0.5"}, "invalid ports"),
        ({"ports": [0], "source_cidr": "10.0.0.5"}, "invalid ports"),
        ({"ports": [65536], "source_group_id": "sg-1"}, "invalid ports"),
        ({"ports": [8101], "source_cidr": "10.0.0.300"}, "does not appear to be"),
    ],
)
def test_ingress_rules_refused(kwargs: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ingress_rules(**kwargs)


def test_permissions_round_trip() -> None:
    rules = ingress_rules([22, 8101], source_cidr="10.0.0.5", source_group_id="sg-m") | ingress_rules(
        [8101], source_cidr="2001:db8::/64"
    )
    perms = ip_permissions(sorted(rules))
    assert all(p["IpProtocol"] == "tcp" for p in perms)
    assert any({"CidrIp": "10.0.0.5/32", "Description": "GBrowse master"} in p.get("IpRanges", ()) for p in perms)
    assert permissions_of(perms) == rules


def test_permissions_of_an_answer_with_several_sources_per_permission() -> None:
    raw = [
        {
            "IpProtocol": "tcp",
            "FromPort": 8100,
            "ToPort": 8110,
            "IpRanges": [{"CidrIp": "10.0.0.1/32"}, {"CidrIp": "10.0.0.2/32"}],
            "UserIdGroupPairs": [{"GroupId": "sg-1"}],
        },
        {"IpProtocol": "-1"},
    ]
    assert permissions_of(raw) == {
        ("tcp", 8100, 8110, "cidr", "10.0.0.1/32"),
        ("tcp", 8100, 8110, "cidr", "10.0.0.2/32"),
        ("tcp", 8100, 8110, "group", "sg-1"),
    }


def test_the_pure_half_imports_no_boto() -> None:
    """The daemon's tests of conversions need no boto3, and neither do these modules."""
    code = (
        "import sys\n"
        "import ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'ansible')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"
