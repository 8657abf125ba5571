# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The adapter's part in the spend cap, the on-demand fallback and the launch template's housekeeping
(botocore Stubber: moto answers every spot price with 0.00001 and has no DeleteLaunchTemplateVersions)."""

from __future__ import annotations

import datetime
import typing as t

import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _ec2
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, CapacityError, EC2Error, LaunchSpec
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import (
    BALANCER_TAG,
    LIFECYCLE_TAG,
    highest_spot_price,
    versions_to_prune,
)
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_ec2_unit import (  # noqa: F401 pylint: disable=unused-import
    IMAGE,
    SPEC,
    _with_template,
    client,
    ec2,
    stub,
)

NOW = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.timezone.utc)
PRICE_PARAMS = {
    "InstanceTypes": ["c5.large", "m5.large"],
    "ProductDescriptions": ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
    "StartTime": ANY,
    "Filters": [{"Name": "availability-zone", "Values": ["us-west-2a"]}],
    "MaxResults": 1000,
}


def _price(instance_type: str, zone: str, price: str, minutes_ago: int = 0) -> dict[str, t.Any]:
    return {
        "InstanceType": instance_type,
        "AvailabilityZone": zone,
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": price,
        "Timestamp": NOW - datetime.timedelta(minutes=minutes_ago),
    }


# -- spot prices -------------------------------------------------------------


def test_highest_spot_price_takes_each_pools_latest_price() -> None:
    history = [
        _price("m5.large", "us-west-2a", "0.05"),
        _price("m5.large", "us-west-2a", "0.90", minutes_ago=30),  # an older price of the same pool
        _price("c5.large", "us-west-2a", "0.07"),
        _price("c5.large", "us-west-2b", "0.03"),
        {"InstanceType": "x1.large", "SpotPrice": "n/a"},
    ]
    assert highest_spot_price(history) == 0.07
    assert highest_spot_price([]) is None


def test_spot_price_is_asked_once_per_ten_minutes(
    ec2: EC2, stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(_ec2.time, "monotonic", lambda: clock[0])
    answer = {"SpotPriceHistory": [_price("m5.large", "us-west-2a", "0.041"), _price("c5.large", "us-west-2a", "0.052")]}
    stub.add_response("describe_spot_price_history", answer, PRICE_PARAMS)
    stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []}, PRICE_PARAMS)
    assert ec2.spot_price(["m5.large", "c5.large"], ["us-west-2a"]) == 0.052
    clock[0] += _ec2.SPOT_PRICE_MAX_AGE - 1
    assert ec2.spot_price(["c5.large", "m5.large"], ["us-west-2a"]) == 0.052  # cached, in any order
    assert ec2.calls["DescribeSpotPriceHistory"] == 1
    clock[0] += 2
    assert ec2.spot_price(["m5.large", "c5.large"], ["us-west-2a"]) is None  # asked again: no price known
    assert ec2.calls["DescribeSpotPriceHistory"] == 2


def test_a_refused_spot_price_raises_once_then_is_unknown_for_ten_minutes(ec2: EC2, stub: Stubber) -> None:
    """An older IAM policy without ec2:DescribeSpotPriceHistory: one error to log, not one per poll."""
    stub.add_client_error("describe_spot_price_history", "UnauthorizedOperation", "You are not authorized", 403)
    with pytest.raises(EC2Error) as caught:
        ec2.spot_price(["m5.large"])
    assert "describe spot prices" in str(caught.value) and caught.value.code == "UnauthorizedOperation"
    assert ec2.spot_price(["m5.large"]) is None
    assert ec2.calls["DescribeSpotPriceHistory"] == 1


# -- the on-demand fallback ---------------------------------------------------


def test_on_demand_fleet_request_same_template_and_types_tagged_and_priced(ec2: EC2) -> None:
    request = ec2.fleet_request(2, SPEC, "lt-1", 4, on_demand_price=0.096)
    assert "SpotOptions" not in request
    assert request["OnDemandOptions"] == {"AllocationStrategy": "lowest-price", "MaxTotalPrice": "0.192"}
    assert request["TargetCapacitySpecification"] == {
        "TotalTargetCapacity": 2,
        "DefaultTargetCapacityType": "on-demand",
    }
    (config,) = request["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"] == {"LaunchTemplateId": "lt-1", "Version": "4"}
    assert config["Overrides"] == [
        {"InstanceType": "m5.large", "SubnetId": "subnet-1"},
        {"InstanceType": "c5.large", "SubnetId": "subnet-1"},
    ]
    fleet, instance = request["TagSpecifications"]
    assert fleet == {"ResourceType": "fleet", "Tags": [{"Key": BALANCER_TAG, "Value": "unit"}]}
    assert instance["ResourceType"] == "instance"
    assert {"Key": LIFECYCLE_TAG, "Value": "on-demand"} in instance["Tags"]
    assert {"Key": BALANCER_TAG, "Value": "unit"} in instance["Tags"]
    with pytest.raises(ValueError):
        ec2.fleet_request(1, SPEC, "lt-1", 1, on_demand_price=0)


def test_every_instance_type_of_the_conf_is_an_override_spot_and_on_demand(ec2: EC2) -> None:
    """[SLAVE] instance_type, as many as given, each one a pool EC2 may launch from."""
    conf = parse_conf("[LOAD TABLE]\n1 0 1\n[SLAVE]\ninstance_type = m5.large m6i.large c5.large r5.large m5a.large\n", "x")
    spec = LaunchSpec(image_id="ami-1", instance_types=conf.slave.instance_types, spot_bid=0.1, ports=(8101,))
    for price in (None, 0.2):
        request = ec2.fleet_request(3, spec, "lt-1", 1, on_demand_price=price)
        overrides = request["LaunchTemplateConfigs"][0]["Overrides"]
        assert [o["InstanceType"] for o in overrides] == ["m5.large", "m6i.large", "c5.large", "r5.large", "m5a.large"]


def test_on_demand_launch_sends_one_on_demand_create_fleet(ec2: EC2, stub: Stubber) -> None:
    _with_template(ec2, stub)
    params = {
        "Type": "instant",
        "ClientToken": ANY,
        "OnDemandOptions": {"AllocationStrategy": "lowest-price", "MaxTotalPrice": "0.1"},
        "TargetCapacitySpecification": {"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
        "LaunchTemplateConfigs": ANY,
        "TagSpecifications": ANY,
    }
    stub.add_response("create_fleet", {"Instances": [{"InstanceIds": ["i-od"], "Lifecycle": "on-demand"}]}, params)
    assert ec2.launch(1, SPEC, on_demand_price=0.1).instance_ids == ("i-od",)


def test_no_on_demand_capacity_is_a_capacity_error(ec2: EC2, stub: Stubber) -> None:
    _with_template(ec2, stub)
    answer = {"Instances": [], "Errors": [{"ErrorCode": "InsufficientInstanceCapacity", "ErrorMessage": "none"}]}
    stub.add_response("create_fleet", answer, {"Type": "instant", "ClientToken": ANY, "OnDemandOptions": ANY,
                                               "TargetCapacitySpecification": ANY, "LaunchTemplateConfigs": ANY,
                                               "TagSpecifications": ANY})
    with pytest.raises(CapacityError):
        ec2.launch(1, SPEC, on_demand_price=0.1)


# -- old launch template versions ---------------------------------------------


def test_versions_to_prune_keep_the_default_and_the_one_before() -> None:
    versions = [
        {"VersionNumber": 1, "DefaultVersion": False},
        {"VersionNumber": 2, "DefaultVersion": False},
        {"VersionNumber": 3, "DefaultVersion": False},
        {"VersionNumber": 4, "DefaultVersion": True},
    ]
    assert versions_to_prune(versions, keep={4, 3}) == [1, 2]
    assert versions_to_prune(versions[3:], keep={4, 3}) == []


def _changed_template(ec2: EC2, stub: Stubber) -> None:
    """Our template has versions 1 to 3, the default 3 with other data: a version 4 is made and becomes the default."""
    stub.add_response(
        "describe_images",
        {"Images": [{"ImageId": IMAGE.id, "Name": IMAGE.name, "RootDeviceName": "/dev/xvda",
                     "BlockDeviceMappings": list(IMAGE.block_device_mappings)}]},
        {"ImageIds": [IMAGE.id]},
    )
    stub.add_response(
        "describe_launch_templates",
        {"LaunchTemplates": [{"LaunchTemplateId": "lt-1", "LaunchTemplateName": ec2.name,
                              "Tags": [{"Key": BALANCER_TAG, "Value": "unit"}]}]},
        {"Filters": ANY},
    )
    all_versions = [{"VersionNumber": n, "DefaultVersion": n == 3, "LaunchTemplateData": {"ImageId": "ami-old"}}
                    for n in (1, 2, 3)]
    stub.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": all_versions},
                      {"LaunchTemplateId": "lt-1"})
    stub.add_response(
        "create_launch_template_version",
        {"LaunchTemplateVersion": {"VersionNumber": 4}},
        {"LaunchTemplateId": "lt-1", "LaunchTemplateData": ANY, "VersionDescription": ANY},
    )
    stub.add_response("modify_launch_template", {}, {"LaunchTemplateId": "lt-1", "DefaultVersion": "4"})


def test_a_new_template_version_prunes_all_but_it_and_the_one_before(ec2: EC2, stub: Stubber) -> None:
    _changed_template(ec2, stub)
    stub.add_response(
        "delete_launch_template_versions",
        {"SuccessfullyDeletedLaunchTemplateVersions": [
            {"LaunchTemplateId": "lt-1", "VersionNumber": 1}, {"LaunchTemplateId": "lt-1", "VersionNumber": 2}]},
        {"LaunchTemplateId": "lt-1", "Versions": ["1", "2"]},
    )
    assert ec2.ensure_launch_template(SPEC) == "lt-1"
    assert ec2.template_version == 4
    assert ec2.warnings == []
    assert ec2.calls["DescribeLaunchTemplateVersions"] == 1  # the one that found the default lists them all


def test_pruning_that_fails_is_a_warning_not_an_error(ec2: EC2, stub: Stubber) -> None:
    _changed_template(ec2, stub)
    stub.add_client_error("delete_launch_template_versions", "UnauthorizedOperation", "not authorized", 403)
    assert ec2.ensure_launch_template(SPEC) == "lt-1"
    assert ec2.template_version == 4
    (warning,) = ec2.warnings
    assert warning.startswith("Old launch template versions are kept: Failed to delete old versions") and "Unauthorized" in warning


def test_an_unchanged_template_prunes_nothing(ec2: EC2, stub: Stubber) -> None:
    """No new version, no pruning: a steady balancer makes no housekeeping call."""
    _with_template(ec2, stub)
    ec2.ensure_launch_template(SPEC)
    ec2.ensure_launch_template(SPEC)
    assert "DescribeLaunchTemplateVersions" not in ec2.calls and "DeleteLaunchTemplateVersions" not in ec2.calls
