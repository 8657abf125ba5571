# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EC2 adapter against a moto server over HTTP, and IMDSv2 against a loopback fake.

Nothing is patched: the adapter talks to moto through the same botocore
client it uses in production, only the endpoint and the (dummy) credentials
differ. What moto cannot produce (capacity errors, DependencyViolation, ...)
is covered in tests/unit/plugins/module_utils/test_ec2_unit.py.

Also checked here: the test infrastructure the other suites build on (slave
stand-ins, the fault proxy, the fake metadata service).
"""

from __future__ import annotations

import base64
import copy
import http.client
import ipaddress
import socket
import time
import typing as t
import urllib.error
import urllib.request

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import (
    BALANCER_TAG,
    EC2,
    EC2Error,
    LaunchSpec,
    make_client,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import NAME_TAG_VALUE, default_user_data
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metadata import InstanceMetadata
from ansible_collections.gmod.gbrowse_aws.tests.support.faultproxy import FaultProxy
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    STOCK_AMI,
    FakeInstanceMetadata,
    MotoServer,
    Network,
    aws_env,
    free_port,
    make_snapshots,
    run_foreign_instances,
    slave_image,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.slaves import SlaveStandIns

# Fixtures (moto_server, ec2_client, network, slave_stand_ins, fault_proxy,
# fake_imds, aws_environment) come from tests/support/fixtures_ec2.py through
# tests/system/conftest.py.

BALANCER = "test-balancer"


def adapter_for(url: str, balancer_id: str = BALANCER) -> EC2:
    return EC2(make_client(REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=url), balancer_id)


@pytest.fixture
def adapter(moto_server: MotoServer) -> EC2:
    return adapter_for(moto_server.url)


def slave_spec(network: Network, **changes: t.Any) -> LaunchSpec:
    values: dict[str, t.Any] = {
        "image_id": STOCK_AMI,
        "instance_types": ("m5.large",),
        "spot_bid": 0.08,
        "ports": (8101,),
        "subnet_id": network.subnet_id,
    }
    values.update(changes)
    return LaunchSpec(**values)


def all_instances(client: t.Any) -> dict[str, dict[str, t.Any]]:
    found = {}
    for page in client.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for raw in reservation["Instances"]:
                found[raw["InstanceId"]] = raw
    return found


def tags_of(raw: t.Mapping[str, t.Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in raw.get("Tags") or ()}


# -- launching -------------------------------------------------------------


def test_launch_with_several_types_and_data_snapshots(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    snapshots = make_snapshots(ec2_client, network.availability_zone, 3)
    group = adapter.ensure_security_group(network.vpc_id, [8101, 8102], source_cidr="127.0.0.1")
    types = ("m5.large", "c5.large", "m4.large")
    spec = slave_spec(
        network, instance_types=types, ports=(8101, 8102), security_group_ids=(group,), data_snapshots=tuple(snapshots)
    )
    sent: list[dict[str, t.Any]] = []
    adapter.client.meta.events.register(
        "provide-client-params.ec2.CreateFleet", lambda params, **_: sent.append(copy.deepcopy(params))
    )

    result = adapter.launch(4, spec)

    assert len(result.instance_ids) == 4 and result.errors == ()
    fleet = adapter.describe_fleet()
    assert sorted(i.id for i in fleet) == sorted(result.instance_ids)
    subnet = ipaddress.ip_network(network.cidr)
    for instance in fleet:
        assert instance.tags[BALANCER_TAG] == BALANCER
        assert instance.tags["Name"] == NAME_TAG_VALUE
        assert instance.instance_type in types
        assert instance.lifecycle == "spot"
        assert instance.state == "running"
        assert (instance.subnet_id, instance.vpc_id) == (network.subnet_id, network.vpc_id)
        assert ipaddress.ip_address(instance.private_ip) in subnet
        user_data = ec2_client.describe_instance_attribute(InstanceId=instance.id, Attribute="userData")["UserData"][
            "Value"
        ]
        assert base64.b64decode(user_data).decode() == default_user_data((8101, 8102))
    volumes = ec2_client.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": list(result.instance_ids)}]
    )["Volumes"]
    assert volumes and all(tags_of(v) == {BALANCER_TAG: BALANCER, "Name": NAME_TAG_VALUE} for v in volumes)

    # What went over the wire: one instant spot fleet, one override per type at our bid.
    (request,) = sent
    assert request["Type"] == "instant" and request["ClientToken"]
    assert request["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized"}
    assert request["TargetCapacitySpecification"] == {"TotalTargetCapacity": 4, "DefaultTargetCapacityType": "spot"}
    overrides = request["LaunchTemplateConfigs"][0]["Overrides"]
    assert [(o["InstanceType"], o["MaxPrice"], o["SubnetId"]) for o in overrides] == [
        (ty, "0.08", network.subnet_id) for ty in types
    ]
    fleet_record = ec2_client.describe_fleets(FleetIds=[result.fleet_id])["Fleets"][0]
    assert tags_of(fleet_record) == {BALANCER_TAG: BALANCER}

    # The launch template carries the devices, tags and user data.
    template = ec2_client.describe_launch_template_versions(LaunchTemplateName=adapter.name, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ][0]
    data = template["LaunchTemplateData"]
    devices = {m["DeviceName"]: m["Ebs"] for m in data["BlockDeviceMappings"]}
    assert devices["/dev/xvda"]["DeleteOnTermination"] is True  # the image's root, which the image leaves behind
    assert [(name, devices[name]["SnapshotId"]) for name in ("/dev/sdg1", "/dev/sdg2", "/dev/sdg3")] == list(
        zip(("/dev/sdg1", "/dev/sdg2", "/dev/sdg3"), snapshots)
    )
    assert all(ebs["DeleteOnTermination"] is True for ebs in devices.values())
    assert data["SecurityGroupIds"] == [group]
    assert base64.b64decode(data["UserData"]).decode() == default_user_data((8101, 8102))
    specs = {s["ResourceType"]: tags_of(s) for s in data["TagSpecifications"]}
    assert specs["instance"] == specs["volume"] == {BALANCER_TAG: BALANCER, "Name": NAME_TAG_VALUE}

    # moto's CreateFleet ignores a template's block devices; its RunInstances
    # applies them, so check there that the template gives the data volumes.
    probe = ec2_client.run_instances(
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        SubnetId=network.subnet_id,
        LaunchTemplate={"LaunchTemplateName": adapter.name, "Version": "$Default"},
    )["Instances"][0]
    attached = {m["DeviceName"]: m["Ebs"] for m in probe["BlockDeviceMappings"]}
    for name, snapshot in zip(("/dev/sdg1", "/dev/sdg2", "/dev/sdg3"), snapshots):
        assert attached[name]["DeleteOnTermination"] is True
        (volume,) = ec2_client.describe_volumes(VolumeIds=[attached[name]["VolumeId"]])["Volumes"]
        assert volume["SnapshotId"] == snapshot
    assert adapter.terminate([probe["InstanceId"]]) == [probe["InstanceId"]]


def test_describe_fleet_sees_only_its_own(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    ours = set(adapter.launch(2, slave_spec(network)).instance_ids)
    run_foreign_instances(ec2_client, network.subnet_id, 2)
    others = run_foreign_instances(
        ec2_client, network.subnet_id, 1, {BALANCER_TAG: "someone-else", "Name": NAME_TAG_VALUE}
    )
    (stopped,) = run_foreign_instances(ec2_client, network.subnet_id, 1, {BALANCER_TAG: BALANCER})
    ec2_client.stop_instances(InstanceIds=[stopped])
    (gone,) = run_foreign_instances(ec2_client, network.subnet_id, 1, {BALANCER_TAG: BALANCER})
    ec2_client.terminate_instances(InstanceIds=[gone])

    fleet = {i.id: i.state for i in adapter.describe_fleet()}
    assert fleet == {**{i: "running" for i in ours}, stopped: "stopped"}
    assert [i.id for i in adapter_for(adapter.client.meta.endpoint_url, "someone-else").describe_fleet()] == others


def test_terminate_refuses_what_is_not_its_own(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    ours = list(adapter.launch(2, slave_spec(network)).instance_ids)
    (untagged,) = run_foreign_instances(ec2_client, network.subnet_id, 1)
    (other,) = run_foreign_instances(ec2_client, network.subnet_id, 1, {BALANCER_TAG: "someone-else"})
    adapter.calls.clear()

    asked = adapter.terminate(ours + [untagged, other, "i-0123456789abcdef0", ours[0]])

    assert asked == ours
    assert dict(adapter.calls) == {"DescribeInstances": 1, "TerminateInstances": 1}
    states = {i: raw["State"]["Name"] for i, raw in all_instances(ec2_client).items()}
    assert {states[i] for i in ours} <= {"shutting-down", "terminated"}
    assert states[untagged] == states[other] == "running"
    assert adapter.describe_fleet() == []
    assert adapter.terminate(ours) == []  # already gone: nothing asked
    adapter.calls.clear()
    assert adapter.terminate([]) == [] and adapter.total_calls == 0


# -- launch template, security group, images --------------------------------


def test_launch_template_gets_a_new_version_only_on_change(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    spec = slave_spec(network)
    template_id = adapter.ensure_launch_template(spec)
    assert dict(adapter.calls) == {"DescribeImages": 1, "DescribeLaunchTemplates": 1, "CreateLaunchTemplate": 1}
    (template,) = ec2_client.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    assert template["LaunchTemplateName"] == f"gbrowse-slave-{BALANCER}"
    assert tags_of(template) == {BALANCER_TAG: BALANCER}

    adapter.calls.clear()
    for _poll in range(3):  # a steady poll: no call at all, launches included until CreateFleet
        assert adapter.ensure_launch_template(spec) == template_id
    assert adapter.total_calls == 0

    changed = slave_spec(network, ports=(8101, 8102), key_name="gbrowse-admin")
    assert adapter.ensure_launch_template(changed) == template_id
    assert dict(adapter.calls) == {
        "DescribeLaunchTemplates": 1,
        "DescribeLaunchTemplateVersions": 1,
        "CreateLaunchTemplateVersion": 1,
        "ModifyLaunchTemplate": 1,
    }
    (template,) = ec2_client.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    assert (template["DefaultVersionNumber"], template["LatestVersionNumber"]) == (2, 2)
    assert adapter.template_version == 2

    # A restarted balancer with the same conf finds the template as it is: no new version.
    restarted = adapter_for(adapter.client.meta.endpoint_url)
    assert restarted.ensure_launch_template(changed) == template_id
    assert dict(restarted.calls) == {
        "DescribeImages": 1,
        "DescribeLaunchTemplates": 1,
        "DescribeLaunchTemplateVersions": 1,
    }
    (template,) = ec2_client.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"]
    assert template["LatestVersionNumber"] == 2

    launched = restarted.launch(1, changed)
    (raw,) = [all_instances(ec2_client)[i] for i in launched.instance_ids]
    assert raw.get("KeyName") == "gbrowse-admin"

    assert restarted.delete_launch_template() is True
    assert (
        ec2_client.describe_launch_templates(Filters=[{"Name": f"tag:{BALANCER_TAG}", "Values": [BALANCER]}])[
            "LaunchTemplates"
        ]
        == []
    )
    assert restarted.delete_launch_template() is True


def test_security_group_idempotent_converged_and_deleted(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    # A stranger's group with our name in another VPC is never touched.
    stranger = ec2_client.create_security_group(GroupName=adapter.name, Description="not ours")["GroupId"]

    group = adapter.ensure_security_group(network.vpc_id, [8101], source_cidr="127.0.0.1", ssh=True)
    (raw,) = ec2_client.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert raw["VpcId"] == network.vpc_id and tags_of(raw)[BALANCER_TAG] == BALANCER
    rules = {(p["FromPort"], r["CidrIp"]) for p in raw["IpPermissions"] for r in p["IpRanges"]}
    assert rules == {(8101, "127.0.0.1/32"), (22, "127.0.0.1/32")}

    adapter.calls.clear()
    assert adapter.ensure_security_group(network.vpc_id, [8101], source_cidr="127.0.0.1", ssh=True) == group
    assert adapter.total_calls == 0
    restarted = adapter_for(adapter.client.meta.endpoint_url)
    assert restarted.ensure_security_group(network.vpc_id, [8101], source_cidr="127.0.0.1/32", ssh=True) == group
    assert dict(restarted.calls) == {"DescribeSecurityGroups": 1}

    # The master moved to its own security group, a port was added, ssh dropped.
    master_group = ec2_client.create_security_group(
        GroupName="gbrowse-master", Description="master", VpcId=network.vpc_id
    )["GroupId"]
    assert restarted.ensure_security_group(network.vpc_id, [8101, 8102], source_group_id=master_group) == group
    (raw,) = ec2_client.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    rules = {(p["FromPort"], pair["GroupId"]) for p in raw["IpPermissions"] for pair in p["UserIdGroupPairs"]}
    assert rules == {(8101, master_group), (8102, master_group)}
    assert not any(p["IpRanges"] for p in raw["IpPermissions"])

    with pytest.raises(ValueError):
        adapter.ensure_security_group(network.vpc_id, [8101])  # no source: never open to the world

    assert adapter.delete_security_group() is True
    remaining = {g["GroupId"] for g in ec2_client.describe_security_groups()["SecurityGroups"]}
    assert group not in remaining and stranger in remaining and master_group in remaining
    assert adapter.delete_security_group() is True


def test_resolve_image_by_id_and_by_name(ec2_client: t.Any, adapter: EC2) -> None:
    stock = adapter.resolve_image(STOCK_AMI)
    assert (stock.id, stock.root_device_name) == (STOCK_AMI, "/dev/xvda")
    older = slave_image(ec2_client, "GBrowse-2.56-zz")
    time.sleep(1.1)  # moto's CreationDate has one-second resolution
    newer = slave_image(ec2_client, "GBrowse-2.54-aa")  # newest, though its name sorts first
    assert adapter.resolve_image("GBrowse").id == newer
    assert adapter.resolve_image("GBrowse-2.56").id == older
    with pytest.raises(EC2Error, match="No available image whose name contains 'GBrowse-9'"):
        adapter.resolve_image("GBrowse-9")
    # Name lookups stay within the account's own images unless told otherwise.
    with pytest.raises(EC2Error):
        adapter.resolve_image("amzn2-ami-hvm-2.0.20180810")
    assert adapter.resolve_image("amzn2-ami-hvm-2.0.20180810-x86_64-gp2", owners=None).id == STOCK_AMI
    with pytest.raises(EC2Error, match="Image ami-0123456789abcdef0 not found"):
        adapter.resolve_image("ami-0123456789abcdef0")


def test_describe_subnet(network: Network, adapter: EC2) -> None:
    subnet = adapter.describe_subnet(network.subnet_id)
    assert (subnet.vpc_id, subnet.availability_zone, subnet.cidr) == (
        network.vpc_id,
        network.availability_zone,
        network.cidr,
    )
    with pytest.raises(EC2Error):
        adapter.describe_subnet("subnet-0123456789abcdef0")


# -- cost and resilience ----------------------------------------------------


@pytest.mark.parametrize("slaves", [0, 10, 100])
def test_a_steady_poll_costs_one_call(network: Network, adapter: EC2, slaves: int) -> None:
    if slaves:
        assert len(adapter.launch(slaves, slave_spec(network)).instance_ids) == slaves
    adapter.calls.clear()
    adapter.attempts.clear()
    fleet = adapter.describe_fleet()
    assert len(fleet) == slaves
    assert dict(adapter.calls) == {"DescribeInstances": 1}
    assert dict(adapter.attempts) == {"DescribeInstances": 1}


def test_thirty_percent_throttling_is_absorbed_by_retries(
    ec2_client: t.Any, network: Network, fault_proxy: FaultProxy
) -> None:
    adapter = adapter_for(fault_proxy.url)
    started = time.monotonic()
    group = adapter.ensure_security_group(network.vpc_id, [8101], source_cidr="127.0.0.1")
    spec = slave_spec(network, instance_types=("m5.large", "c5.large"), security_group_ids=(group,))
    launched = adapter.launch(5, spec)
    for _poll in range(10):  # ten steady polls
        assert len(adapter.describe_fleet()) == 5
        adapter.ensure_launch_template(spec)
    victims = adapter.terminate(launched.instance_ids[:2])
    assert len(adapter.describe_fleet()) == 3
    adapter.terminate(launched.instance_ids)
    assert adapter.delete_launch_template() is True
    assert adapter.delete_security_group() is True
    elapsed = time.monotonic() - started

    stats = fault_proxy.stats()
    print(
        f"\n30% throttling: {adapter.total_calls} calls, {sum(adapter.attempts.values())} attempts, {stats}, {elapsed:.1f}s"
    )
    assert len(victims) == 2
    assert stats["failed"] > 0
    assert sum(adapter.attempts.values()) == adapter.total_calls + stats["failed"]
    # Each CreateFleet that reached moto launched once: five instances, no more.
    assert len([i for i, raw in all_instances(ec2_client).items() if tags_of(raw).get(BALANCER_TAG) == BALANCER]) == 5


def test_errors_and_resets_are_retried_without_duplicates(
    ec2_client: t.Any, network: Network, moto_server: MotoServer
) -> None:
    with FaultProxy(moto_server.url, fail_ratio=0.3, seed=3, faults=("500", "unavailable", "reset")) as proxy:
        adapter = adapter_for(proxy.url)
        for _round in range(4):
            adapter.launch(2, slave_spec(network))
            adapter.describe_fleet()
        assert len(adapter.describe_fleet()) == 8
        assert proxy.stats()["failed"] > 0
    assert sum(1 for raw in all_instances(ec2_client).values() if tags_of(raw).get(BALANCER_TAG) == BALANCER) == 8


def test_retries_give_up_with_a_named_error(moto_server: MotoServer) -> None:
    with FaultProxy(moto_server.url, fail_ratio=1.0, seed=1, faults=("500",), actions={"DescribeInstances"}) as proxy:
        client = make_client(
            REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=proxy.url, max_attempts=4
        )
        adapter = EC2(client, BALANCER)
        with pytest.raises(EC2Error) as caught:
            adapter.describe_fleet()
    assert caught.value.code == "InternalError"
    assert str(caught.value).startswith("Failed to describe instances: InternalError:")
    assert adapter.attempts["DescribeInstances"] == 4 == proxy.failed["DescribeInstances"]


def test_endpoint_and_credentials_from_the_environment(aws_environment: dict[str, str], network: Network) -> None:
    adapter = EC2(make_client(None), BALANCER)  # region, endpoint and keys all from the environment
    assert adapter.client.meta.region_name == REGION
    assert adapter.describe_fleet() == []
    assert len(adapter.launch(1, slave_spec(network)).instance_ids) == 1


def test_credentials_from_the_instance_role_over_imdsv2(
    moto_server: MotoServer, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeInstanceMetadata(role="gbrowse-master") as imds:
        for key in list(aws_env(moto_server.url)) + [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ]:
            monkeypatch.delenv(key, raising=False)
        env = {
            k: v for k, v in aws_env(moto_server.url).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        env.update(imds.env())
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        adapter = EC2(make_client(REGION), BALANCER)
        assert adapter.describe_fleet() == []
        assert adapter.client._request_signer._credentials.access_key == ACCESS_KEY
        seen = [request[:2] for request in imds.requests]
        assert seen[0] == ("PUT", "/latest/api/token")
        assert ("GET", "/latest/meta-data/iam/security-credentials/gbrowse-master") in seen
        assert all(request[2] for request in imds.requests if request[0] == "GET")


# -- instance metadata ----------------------------------------------------------


def test_metadata_from_a_fake_imdsv2(fake_imds: FakeInstanceMetadata) -> None:
    meta = InstanceMetadata(environ={"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_imds.url})
    assert meta.available() is True
    assert meta.instance_id == fake_imds.instance_id
    assert meta.region == REGION and meta.availability_zone == REGION + "a"
    assert meta.image_id == STOCK_AMI
    assert meta.private_ip == fake_imds.private_ip
    assert meta.public_ip is None  # no public address: 404
    assert meta.mac == fake_imds.mac
    assert meta.subnet_id == fake_imds.subnet_id and meta.vpc_id == fake_imds.vpc_id
    assert meta.security_group_ids == fake_imds.security_group_ids
    assert fake_imds.requests[0][:2] == ("PUT", "/latest/api/token")
    assert sum(1 for request in fake_imds.requests if request[0] == "PUT") == 1
    assert all(request[2] for request in fake_imds.requests if request[0] == "GET")
    asked = len(fake_imds.requests)
    again = (meta.instance_id, meta.region, meta.public_ip, meta.security_group_ids, meta.available())
    assert again == (fake_imds.instance_id, REGION, None, fake_imds.security_group_ids, True)
    assert len(fake_imds.requests) == asked  # cached, the 404 included


def test_fake_imds_insists_on_a_token_and_metadata_renews_it(fake_imds: FakeInstanceMetadata) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            fake_imds.url + "latest/meta-data/instance-id", timeout=2
        )
    assert caught.value.code == 401
    caught.value.close()
    meta = InstanceMetadata(environ={"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_imds.url})
    assert meta.instance_id == fake_imds.instance_id
    fake_imds._tokens.clear()  # the token expired
    assert meta.vpc_id == fake_imds.vpc_id
    assert sum(1 for request in fake_imds.requests if request[0] == "PUT") == 2


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_metadata_disabled_opens_no_connection(value: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        endpoint = "http://127.0.0.1:%d" % listener.getsockname()[1]
        meta = InstanceMetadata(
            environ={"AWS_EC2_METADATA_DISABLED": value, "AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint}
        )
        assert meta.available() is False
        values = [
            meta.instance_id,
            meta.region,
            meta.image_id,
            meta.private_ip,
            meta.public_ip,
            meta.mac,
            meta.subnet_id,
            meta.vpc_id,
            meta.security_group_ids,
        ]
        assert values == [None] * len(values)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # the kernel would have queued any connection
            listener.accept()


def test_metadata_unreachable_is_quick_and_quiet() -> None:
    refused = InstanceMetadata(environ={"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:%d" % free_port()})
    started = time.monotonic()
    assert refused.available() is False and refused.region is None
    assert time.monotonic() - started < 1.0
    assert refused.last_error

    with FakeInstanceMetadata(hang=True) as imds:
        hanging = InstanceMetadata(environ={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
        started = time.monotonic()
        assert hanging.available() is False
        assert hanging.instance_id is None and hanging.vpc_id is None  # no second wait
        assert time.monotonic() - started < 2.5
        assert len(imds.requests) == 1


def test_fake_imds_for_a_moto_instance(ec2_client: t.Any, network: Network) -> None:
    (master,) = run_foreign_instances(ec2_client, network.subnet_id, 1, {"Name": "GBrowse master"})
    with FakeInstanceMetadata.for_instance(ec2_client, master) as imds:
        meta = InstanceMetadata(environ=imds.env())
        assert meta.available()
        assert (meta.instance_id, meta.subnet_id, meta.vpc_id, meta.availability_zone) == (
            master,
            network.subnet_id,
            network.vpc_id,
            network.availability_zone,
        )
        assert ipaddress.ip_address(meta.private_ip) in ipaddress.ip_network(network.cidr)


# -- the test infrastructure itself ------------------------------------------------


def _status(address: str, port: int = 8101, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("HEAD", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def test_slave_stand_ins_follow_moto(network: Network, adapter: EC2, slave_stand_ins: SlaveStandIns) -> None:
    ids = list(adapter.launch(4, slave_spec(network)).instance_ids)
    up = slave_stand_ins.wait_listening(4, timeout=5)
    addresses = {i: up[i][0] for i in ids}
    assert all(_status(addresses[i]) == 403 for i in ids)

    slave_stand_ins.set_behaviour(ids[0], "hang")
    slave_stand_ins.set_behaviour(ids[1], "refuse")
    slave_stand_ins.set_behaviour(ids[2], "500")
    with pytest.raises(socket.timeout):
        _status(addresses[ids[0]], timeout=0.5)  # connected, never answered
    with pytest.raises(ConnectionRefusedError):
        _status(addresses[ids[1]])
    assert _status(addresses[ids[2]]) == 500
    assert slave_stand_ins.hits[ids[3]] == 1 and slave_stand_ins.hits[ids[0]] == 2  # one answered, one held

    adapter.terminate([ids[3]])
    deadline = time.monotonic() + 3
    while ids[3] in slave_stand_ins.listening() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ConnectionRefusedError):
        _status(addresses[ids[3]])


def test_slave_stand_ins_boot_delay_and_loopback_only(
    ec2_client: t.Any, moto_server: MotoServer, network: Network, adapter: EC2
) -> None:
    with SlaveStandIns(moto_server.url, balancer_id=BALANCER, boot_delay=3.0) as stand_ins:
        (slave,) = adapter.launch(1, slave_spec(network)).instance_ids
        (outside,) = run_foreign_instances(ec2_client, None, 1, {BALANCER_TAG: BALANCER})  # default VPC: 172.31.x.x
        stand_ins.wait_listening(1, timeout=5, behaviour="refuse")
        address = stand_ins.listening()[slave][0]
        with pytest.raises(ConnectionRefusedError):
            _status(address)
        stand_ins.wait_listening(1, timeout=8)
        assert _status(address) == 403
        assert outside in stand_ins.skipped and outside not in stand_ins.listening()


def test_fault_proxy_counts_and_forced_faults(moto_server: MotoServer) -> None:
    with FaultProxy(moto_server.url, fail_ratio=0.0) as proxy:
        from ansible_collections.gmod.gbrowse_aws.tests.support.moto import boto3_client

        client = boto3_client(proxy.url, retries={"mode": "standard", "total_max_attempts": 1})
        proxy.fail_next(1, "throttle")
        with pytest.raises(Exception) as caught:
            client.describe_instances()
        error = caught.value.response  # type: ignore[attr-defined]
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("RequestLimitExceeded", 503)
        client.describe_instances()
        assert (proxy.failed["DescribeInstances"], proxy.forwarded["DescribeInstances"]) == (1, 1)
        proxy.fail_ratio = 1.0
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            urllib.request.Request(proxy.url + "/moto-api/reset", data=b"", method="POST"), timeout=10
        ).close()  # moto's own API always passes


def test_find_a_configured_security_group(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    mine = ec2_client.create_security_group(GroupName="gbrowse-slaves", Description="by hand", VpcId=network.vpc_id)[
        "GroupId"
    ]
    elsewhere = ec2_client.create_security_group(GroupName="gbrowse-slaves", Description="default VPC")["GroupId"]
    assert adapter.subnet_vpc(network.subnet_id) == network.vpc_id
    assert adapter.find_security_group(mine) == mine
    assert adapter.find_security_group("gbrowse-slaves", network.subnet_id) == mine
    with pytest.raises(EC2Error, match="Several security groups"):
        adapter.find_security_group("gbrowse-slaves")
    ec2_client.delete_security_group(GroupId=elsewhere)
    assert adapter.find_security_group("gbrowse-slaves") == mine
    with pytest.raises(EC2Error, match="No security group named 'nope'"):
        adapter.find_security_group("nope", network.subnet_id)
    with pytest.raises(EC2Error, match="Security group sg-0123456789abcdef0 not found"):
        adapter.find_security_group("sg-0123456789abcdef0")


def test_a_template_deleted_behind_its_back_is_made_anew(ec2_client: t.Any, network: Network, adapter: EC2) -> None:
    spec = slave_spec(network)
    first = adapter.ensure_launch_template(spec)
    ec2_client.delete_launch_template(LaunchTemplateId=first)
    launched = adapter.launch(1, spec)
    assert len(launched.instance_ids) == 1
    (template,) = ec2_client.describe_launch_templates(Filters=[{"Name": f"tag:{BALANCER_TAG}", "Values": [BALANCER]}])[
        "LaunchTemplates"
    ]
    assert template["LaunchTemplateId"] != first
    assert adapter.calls["CreateFleet"] == 2 and adapter.calls["CreateLaunchTemplate"] == 2
