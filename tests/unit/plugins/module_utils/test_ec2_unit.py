# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EC2 adapter's pure helpers, and what moto cannot produce (botocore Stubber).

moto never runs out of capacity, never finds a spot price too low, never
refuses to delete a security group in use and gives every image the same
CreationDate within a second. Those answers are stubbed here; everything else
is tested against a real moto server in tests/system/test_ec2_adapter.py.

Every client here points at 127.0.0.1:9 with dummy keys: should a stub be
missing, the call fails on loopback instead of going anywhere.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import re
import subprocess
import typing as t
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import (
    BALANCER_TAG,
    EC2,
    CapacityError,
    EC2Error,
    Image,
    LaunchSpec,
    make_client,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import (
    NAME_TAG_VALUE,
    SLAVE_COMMAND,
    block_device_mappings,
    data_device_names,
    default_user_data,
)

NOWHERE = "http://127.0.0.1:9"
TAGS = [{"Key": BALANCER_TAG, "Value": "unit"}, {"Key": "Name", "Value": NAME_TAG_VALUE}]
IMAGE = Image(
    id="ami-0123456789abcdef0",
    name="GBrowse-2.56",
    root_device_name="/dev/xvda",
    block_device_mappings=(
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "SnapshotId": "snap-root",
                "VolumeSize": 20,
                "VolumeType": "gp3",
                "DeleteOnTermination": False,
                "Encrypted": False,
            },
        },
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
    ),
)
SPEC = LaunchSpec(
    image_id=IMAGE.id, instance_types=("m5.large", "c5.large"), spot_bid=0.08, ports=(8101,), subnet_id="subnet-1"
)
#: What every CreateFleet sends (the details are tested in test_fleet_request_shape).
FLEET_PARAMS = {
    "Type": "instant",
    "ClientToken": ANY,
    "SpotOptions": ANY,
    "TargetCapacitySpecification": ANY,
    "LaunchTemplateConfigs": ANY,
    "TagSpecifications": ANY,
}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> t.Any:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2", raising=False)
    return make_client(
        "us-west-2", access_key="AKIAUNITTEST", secret_key="moto-dummy-secret-key-unit-tests", endpoint_url=NOWHERE
    )


@pytest.fixture
def ec2(client: t.Any) -> EC2:
    return EC2(client, "unit")


@pytest.fixture
def stub(client: t.Any, ec2: EC2) -> t.Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _with_template(ec2: EC2, stub: Stubber, spec: LaunchSpec = SPEC) -> None:
    """Queue the calls of a first ensure_launch_template: image, no template yet, create."""
    stub.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": IMAGE.id,
                    "Name": IMAGE.name,
                    "RootDeviceName": "/dev/xvda",
                    "BlockDeviceMappings": list(IMAGE.block_device_mappings),
                }
            ]
        },
        {"ImageIds": [IMAGE.id]},
    )
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"Filters": ANY})
    stub.add_response(
        "create_launch_template",
        {
            "LaunchTemplate": {
                "LaunchTemplateId": "lt-1",
                "LaunchTemplateName": ec2.name,
                "DefaultVersionNumber": 1,
                "LatestVersionNumber": 1,
            }
        },
        {
            "LaunchTemplateName": ec2.name,
            "VersionDescription": ANY,
            "LaunchTemplateData": ANY,
            "TagSpecifications": ANY,
        },
    )


# -- pure helpers ------------------------------------------------------


def test_data_device_names_follow_the_original() -> None:
    names = data_device_names(17)
    assert names[0] == "/dev/sdg1"
    assert names[14] == "/dev/sdg15"
    assert names[15:] == ["/dev/sdh1", "/dev/sdh2"]
    assert data_device_names(0) == []
    with pytest.raises(ValueError):
        data_device_names(-1)


def test_block_device_mappings_root_plus_snapshots_all_deleted_on_termination() -> None:
    mappings = block_device_mappings(IMAGE, ["snap-a", "snap-b"])
    assert mappings == [
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True, "VolumeSize": 20, "VolumeType": "gp3"}},
        {"DeviceName": "/dev/sdg1", "Ebs": {"SnapshotId": "snap-a", "DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdg2", "Ebs": {"SnapshotId": "snap-b", "DeleteOnTermination": True}},
    ]


def test_default_user_data_starts_the_slave_on_every_port() -> None:
    assert default_user_data((8101,)).startswith("#!/bin/sh\n")
    assert "\n    exec /opt/gbrowse/etc/init.d/gbrowse-slave start 8101\n" in default_user_data((8101,))
    assert "start 8101 8102\n" in default_user_data((8101, 8102))
    assert "\nfor port in 8101 8102; do\n" in default_user_data((8101, 8102))


def test_the_user_data_in_docs_sync_md_is_the_real_one() -> None:
    text = (Path(__file__).resolve().parents[4] / "docs" / "sync.md").read_text(encoding="utf-8")
    documented = re.search(r"```sh\n(#!/bin/sh\n.*?)```", text, re.S)
    assert documented, "docs/sync.md shows no user data"
    assert documented.group(1) == default_user_data((8101,), "/var/lib/gbrowse/databases")


@pytest.mark.parametrize("databases", [None, "/var/lib/gbrowse/databases", "/srv/my data/db's"])
def test_the_user_data_passes_shellcheck(tmp_path: t.Any, databases: str | None) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(default_user_data((8101, 8102), databases))
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_launch_template_carries_the_masters_databases_in_the_user_data(ec2: EC2) -> None:
    spec = dataclasses.replace(SPEC, databases="/var/lib/gbrowse/databases")
    user_data = base64.b64decode(ec2.template_data(spec, IMAGE)["UserData"]).decode()
    assert user_data == default_user_data(SPEC.ports, "/var/lib/gbrowse/databases")
    assert "mount --bind /srv/gbrowse-data/databases /var/lib/gbrowse/databases" in user_data


@pytest.mark.parametrize("bad", ["relative/db", "/", "/a\nb"])
def test_the_masters_databases_must_be_an_absolute_directory(bad: str) -> None:
    with pytest.raises(ValueError, match="databases directory"):
        default_user_data((8101,), bad)


def _run_user_data(
    tmp_path: t.Any, label_found: bool, trees: t.Sequence[str], *, cloud_image: bool = True, databases: str | None = None
) -> list[str]:
    """Run the user data under /bin/sh with the system commands replaced by loggers, in a scratch root."""
    root = tmp_path / "root"
    for tree in trees:
        (root / "srv/gbrowse-data" / tree).mkdir(parents=True)
    log = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        "blkid": 'echo /dev/nvme1n1; exit 0' if label_found else "exit 2",
        "mountpoint": "exit 1",
        "systemctl": 'case "$1" in list-units) echo "mariadb.service loaded active running MariaDB";; esac',
    }
    names = ["blkid", "mountpoint", "systemctl", "udevadm", "sleep", "mount", "mkdir", "chown", "setpriv"]
    for name in names + (["slave"] if cloud_image else []):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{stubs.get(name, "exit 0")}\n')
        stub.chmod(0o755)
    script = (
        default_user_data((8101, 8102), databases)
        .replace("/srv/gbrowse-data", f"{root}/srv/gbrowse-data")
        .replace(SLAVE_COMMAND, str(bin_dir / "slave"))
        .replace("/opt/gbrowse", f"{root}/opt/gbrowse")
        .replace("/var/", f"{root}/var/")
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    subprocess.run(["/bin/sh", "-eu", "-c", script], env=env, check=True, timeout=30)
    return [line.replace(str(root), "") for line in log.read_text().splitlines()]


def test_user_data_mounts_the_labelled_volume_and_binds_its_trees(tmp_path: t.Any) -> None:
    calls = _run_user_data(tmp_path, label_found=True, trees=["databases", "lib/mysql"])
    assert "blkid -L gbrowse-data" in calls
    assert "mount -o noatime /dev/nvme1n1 /srv/gbrowse-data" in calls
    assert "mount --bind /srv/gbrowse-data/databases /opt/gbrowse/databases" in calls
    assert "mount --bind /srv/gbrowse-data/lib/mysql /opt/gbrowse/lib/mysql" in calls
    assert not any("postgresql" in call for call in calls if call.startswith("mount"))
    assert "systemctl restart mariadb.service" in calls  # it started before its data was there
    assert calls[-1] == "slave start 8101 8102"


def test_user_data_without_a_data_volume_only_starts_the_slave(tmp_path: t.Any) -> None:
    calls = _run_user_data(tmp_path, label_found=False, trees=[])
    assert not [call for call in calls if call.startswith(("mount", "systemctl restart"))]
    assert calls.count("sleep 1") == 5  # waits a little for the volume to appear
    assert calls[-1] == "slave start 8101 8102"


def test_user_data_puts_the_synced_databases_at_the_masters_path(tmp_path: t.Any) -> None:
    calls = _run_user_data(tmp_path, label_found=True, trees=["databases"], databases="/var/lib/gbrowse/databases")
    binds = [call for call in calls if call.startswith("mount --bind")]
    assert binds == [
        "mount --bind /srv/gbrowse-data/databases /opt/gbrowse/databases",
        "mount --bind /srv/gbrowse-data/databases /var/lib/gbrowse/databases",
    ]
    assert calls.index("mkdir -p /var/lib/gbrowse/databases") < calls.index(binds[1])


def test_user_data_for_a_master_with_the_cloud_image_layout_binds_once(tmp_path: t.Any) -> None:
    calls = _run_user_data(tmp_path, label_found=True, trees=["databases"], databases="/opt/gbrowse/databases/")
    assert [call for call in calls if call.startswith("mount --bind")] == [
        "mount --bind /srv/gbrowse-data/databases /opt/gbrowse/databases"
    ]


def test_user_data_on_a_debian_slave_starts_gbrowse_slave_as_www_data_with_its_group(tmp_path: t.Any) -> None:
    calls = _run_user_data(tmp_path, label_found=False, trees=[], cloud_image=False)
    assert "chown www-data:www-data /var/run/gbrowse /var/log/gbrowse" in calls
    started = [call for call in calls if call.startswith("setpriv")]
    assert started == [
        "setpriv --reuid=www-data --regid=www-data --init-groups /usr/bin/gbrowse_slave --port "
        f"{port} --prefork 3 --log /var/log/gbrowse/gbrowse_slave.log --pid /var/run/gbrowse/gbrowse-slave.{port}.pid"
        for port in (8101, 8102)
    ]


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 65, "ünïcode", "trailing\n"])
def test_balancer_id_must_be_safe_in_names(client: t.Any, bad: str) -> None:
    with pytest.raises(ValueError):
        EC2(client, bad)


def test_make_client_config(client: t.Any) -> None:
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 8}  # 8 tries in all
    assert "gbrowse_aws/0.1" in config.user_agent_extra
    assert config.connect_timeout and config.read_timeout
    assert client.meta.endpoint_url == NOWHERE
    assert client.meta.region_name == "us-west-2"


def test_the_client_knows_every_operation_the_facade_calls(client: t.Any) -> None:
    """make_client() builds its client from a model cut down to OPERATIONS: the list must hold every call."""
    from botocore import xform_name

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _ec2

    source = Path(_ec2.__file__).read_text(encoding="utf-8")
    called = set(re.findall(r"self\.client\.(?!get_paginator|meta)([a-z_]+)\(", source))
    called |= set(re.findall(r"get_paginator\(\"([a-z_]+)\"\)", source))
    assert called and called == {xform_name(op) for op in _ec2.OPERATIONS}
    assert sorted(client.meta.service_model.operation_names) == sorted(_ec2.OPERATIONS)  # the cut model
    assert client.can_paginate("describe_instances")
    whole = make_client("us-west-2", access_key="AKIAUNITTEST", secret_key="unit", endpoint_url=NOWHERE, operations=None)
    assert len(whole.meta.service_model.operation_names) > 500


def test_make_client_takes_the_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/")
    client = make_client("us-west-2", access_key="AKIAUNITTEST", secret_key="moto-dummy-secret-key-unit-tests")
    assert client.meta.endpoint_url.rstrip("/") == NOWHERE


def test_make_client_without_region_names_the_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    for key in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(EC2Error) as caught:
        make_client(
            None, access_key="AKIAUNITTEST", secret_key="moto-dummy-secret-key-unit-tests", endpoint_url=NOWHERE
        )
    assert "region" in str(caught.value).lower()


def test_fleet_request_shape(ec2: EC2) -> None:
    request = ec2.fleet_request(3, SPEC, "lt-1", 4)
    assert request["Type"] == "instant"
    assert request["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized"}
    assert request["TargetCapacitySpecification"] == {"TotalTargetCapacity": 3, "DefaultTargetCapacityType": "spot"}
    (config,) = request["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"] == {"LaunchTemplateId": "lt-1", "Version": "4"}
    assert config["Overrides"] == [
        {"InstanceType": "m5.large", "MaxPrice": "0.08", "SubnetId": "subnet-1"},
        {"InstanceType": "c5.large", "MaxPrice": "0.08", "SubnetId": "subnet-1"},
    ]
    assert request["TagSpecifications"] == [{"ResourceType": "fleet", "Tags": [{"Key": BALANCER_TAG, "Value": "unit"}]}]
    zoned = LaunchSpec(
        image_id="ami-1", instance_types=("m1.large",), spot_bid=0.1, ports=(8101,), availability_zone="us-west-2b"
    )
    assert ec2.fleet_request(1, zoned, "lt-1", 1)["LaunchTemplateConfigs"][0]["Overrides"] == [
        {"InstanceType": "m1.large", "MaxPrice": "0.1", "AvailabilityZone": "us-west-2b"}
    ]
    with pytest.raises(ValueError):
        ec2.fleet_request(1, LaunchSpec(image_id="ami-1", instance_types=(), spot_bid=0.1, ports=(8101,)), "lt-1", 1)
    with pytest.raises(ValueError):
        ec2.fleet_request(
            1, LaunchSpec(image_id="ami-1", instance_types=("m1.large",), spot_bid=0, ports=(8101,)), "lt-1", 1
        )


def test_launch_zero_makes_no_call(ec2: EC2, stub: Stubber) -> None:
    assert ec2.launch(0, SPEC).instance_ids == ()
    assert ec2.total_calls == 0
    with pytest.raises(ValueError):
        ec2.launch(-1, SPEC)


# -- what moto cannot produce --------------------------------------------


@pytest.mark.parametrize(
    "errors",
    [
        [("InsufficientInstanceCapacity", "There is no Spot capacity available that matches your request.")],
        [
            (
                "SpotMaxPriceTooLow",
                "Your Spot request price of 0.08 is lower than the minimum required Spot request fulfillment price of 0.1.",
            )
        ],
        [
            ("UnfulfillableCapacity", "Unable to fulfill capacity due to your request configuration."),
            ("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded"),
        ],
    ],
)
def test_launch_without_capacity_raises_capacity_error(ec2: EC2, stub: Stubber, errors: list[tuple[str, str]]) -> None:
    _with_template(ec2, stub)
    stub.add_response(
        "create_fleet",
        {
            "FleetId": "fleet-1",
            "Errors": [{"ErrorCode": c, "ErrorMessage": m, "Lifecycle": "spot"} for c, m in errors],
            "Instances": [],
        },
        FLEET_PARAMS,
    )
    with pytest.raises(CapacityError) as caught:
        ec2.launch(2, SPEC)
    assert caught.value.code == errors[0][0]
    assert caught.value.errors == tuple(errors)
    assert str(caught.value).startswith("Failed to launch 2 slave(s): " + errors[0][0])
    assert isinstance(caught.value, EC2Error)


def test_partial_launch_returns_ids_and_errors(ec2: EC2, stub: Stubber) -> None:
    _with_template(ec2, stub)
    stub.add_response(
        "create_fleet",
        {
            "FleetId": "fleet-1",
            "Instances": [{"InstanceIds": ["i-1", "i-2"], "InstanceType": "m5.large", "Lifecycle": "spot"}],
            "Errors": [
                {
                    "ErrorCode": "InsufficientInstanceCapacity",
                    "ErrorMessage": "not enough c5.large",
                    "Lifecycle": "spot",
                }
            ],
        },
        FLEET_PARAMS,
    )
    result = ec2.launch(3, SPEC)
    assert result.instance_ids == ("i-1", "i-2")
    assert result.errors == (("InsufficientInstanceCapacity", "not enough c5.large"),)
    assert result.fleet_id == "fleet-1"


def test_launch_failing_for_another_reason_is_an_ec2_error(ec2: EC2, stub: Stubber) -> None:
    _with_template(ec2, stub)
    stub.add_response(
        "create_fleet",
        {
            "FleetId": "fleet-1",
            "Instances": [],
            "Errors": [
                {"ErrorCode": "InsufficientInstanceCapacity", "ErrorMessage": "no m5"},
                {"ErrorCode": "InvalidParameterValue", "ErrorMessage": "bad snapshot"},
            ],
        },
        FLEET_PARAMS,
    )
    with pytest.raises(EC2Error) as caught:
        ec2.launch(1, SPEC)
    assert not isinstance(caught.value, CapacityError)
    assert caught.value.code == "InvalidParameterValue"
    assert "bad snapshot" in str(caught.value)


def test_create_fleet_refused_for_capacity_is_a_capacity_error(ec2: EC2, stub: Stubber) -> None:
    _with_template(ec2, stub)
    stub.add_client_error("create_fleet", "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded", 400)
    with pytest.raises(CapacityError) as caught:
        ec2.launch(1, SPEC)
    assert (
        str(caught.value)
        == "Failed to launch 1 slave(s): MaxSpotInstanceCountExceeded: Max spot instance count exceeded"
    )


def test_error_message_names_the_action(ec2: EC2, stub: Stubber) -> None:
    stub.add_client_error(
        "describe_instances", "UnauthorizedOperation", "You are not authorized to perform this operation.", 403
    )
    with pytest.raises(EC2Error) as caught:
        ec2.describe_fleet()
    assert (
        str(caught.value)
        == "Failed to describe instances: UnauthorizedOperation: You are not authorized to perform this operation."
    )
    assert caught.value.code == "UnauthorizedOperation"


def test_describe_fleet_pages_and_drops_what_is_not_ours(ec2: EC2, stub: Stubber) -> None:
    when = datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc)

    def raw(instance_id: str, tags: list[dict[str, str]], state: str = "running") -> dict[str, t.Any]:
        return {
            "InstanceId": instance_id,
            "State": {"Name": state},
            "LaunchTime": when,
            "Tags": tags,
            "PrivateIpAddress": "127.100.1.9",
            "InstanceLifecycle": "spot",
        }

    filters = {"Filters": ANY, "MaxResults": 1000}
    stub.add_response(
        "describe_instances", {"Reservations": [{"Instances": [raw("i-2", TAGS)]}], "NextToken": "more"}, filters
    )
    # A filter that let a stranger through must not make it ours.
    stranger = raw("i-3", [{"Key": BALANCER_TAG, "Value": "other"}])
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [raw("i-1", TAGS), stranger, raw("i-4", TAGS, "terminated")]}]},
        {**filters, "NextToken": "more"},
    )
    fleet = ec2.describe_fleet()
    assert [i.id for i in fleet] == ["i-1", "i-2"]
    assert fleet[0].launched == when.timestamp()
    assert fleet[0].lifecycle == "spot"
    assert ec2.calls["DescribeInstances"] == 2


def test_security_group_in_use_is_not_deleted_and_not_an_error(ec2: EC2, stub: Stubber) -> None:
    group = {"GroupId": "sg-1", "GroupName": ec2.name, "Tags": TAGS}
    stub.add_response("describe_security_groups", {"SecurityGroups": [group]}, {"Filters": ANY})
    stub.add_client_error(
        "delete_security_group",
        "DependencyViolation",
        "resource sg-1 has a dependent object",
        400,
        expected_params={"GroupId": "sg-1"},
    )
    assert ec2.delete_security_group() is False
    stub.add_response("describe_security_groups", {"SecurityGroups": [group]}, {"Filters": ANY})
    stub.add_response("delete_security_group", {}, {"GroupId": "sg-1"})
    assert ec2.delete_security_group() is True


def test_duplicate_ingress_rules_are_ignored(ec2: EC2, stub: Stubber) -> None:
    stub.add_response(
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": "sg-1", "GroupName": ec2.name, "Tags": TAGS, "IpPermissions": []}]},
        {"Filters": ANY},
    )
    stub.add_client_error(
        "authorize_security_group_ingress", "InvalidPermission.Duplicate", "the specified rule already exists", 400
    )
    assert ec2.ensure_security_group("vpc-1", [8101], source_cidr="10.0.0.5") == "sg-1"


def test_resolve_image_picks_the_newest_match(ec2: EC2, stub: Stubber) -> None:
    images = [
        {
            "ImageId": "ami-old",
            "Name": "GBrowse-2.56",
            "CreationDate": "2016-03-01T10:00:00.000Z",
            "RootDeviceName": "/dev/xvda",
        },
        {
            "ImageId": "ami-new",
            "Name": "GBrowse-2.54-rebuilt",
            "CreationDate": "2024-05-01T10:00:00.000Z",
            "RootDeviceName": "/dev/sda1",
        },
        {
            "ImageId": "ami-mid",
            "Name": "GBrowse-2.55",
            "CreationDate": "2020-01-01T10:00:00.000Z",
            "RootDeviceName": "/dev/xvda",
        },
    ]
    stub.add_response(
        "describe_images",
        {"Images": images},
        {
            "Owners": ["self"],
            "Filters": [{"Name": "name", "Values": ["*GBrowse*"]}, {"Name": "state", "Values": ["available"]}],
        },
    )
    image = ec2.resolve_image("GBrowse")
    assert (image.id, image.root_device_name) == ("ami-new", "/dev/sda1")


def test_unknown_image_id_is_a_clear_error(ec2: EC2, stub: Stubber) -> None:
    stub.add_client_error(
        "describe_images", "InvalidAMIID.NotFound", "The image id '[ami-0badbadbadbadbad0]' does not exist", 400
    )
    with pytest.raises(EC2Error) as caught:
        ec2.resolve_image("ami-0badbadbadbadbad0")
    assert str(caught.value) == "Image ami-0badbadbadbadbad0 not found"


def test_launch_template_taken_by_someone_else(ec2: EC2, stub: Stubber) -> None:
    stub.add_response(
        "describe_images", {"Images": [{"ImageId": IMAGE.id, "RootDeviceName": "/dev/xvda"}]}, {"ImageIds": [IMAGE.id]}
    )
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"Filters": ANY})
    stub.add_client_error(
        "create_launch_template",
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "Launch template name already in use.",
        400,
    )
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"Filters": ANY})
    with pytest.raises(EC2Error) as caught:
        ec2.ensure_launch_template(SPEC)
    assert "does not carry gbrowse-aws:balancer-id=unit" in str(caught.value)


def test_terminate_batches_by_a_thousand(ec2: EC2, stub: Stubber) -> None:
    ids = [f"i-{n:017x}" for n in range(1001)]
    when = datetime.datetime(2026, 11, 24, tzinfo=datetime.timezone.utc)
    stub.add_response(
        "describe_instances",
        {
            "Reservations": [
                {
                    "Instances": [
                        {"InstanceId": i, "State": {"Name": "running"}, "LaunchTime": when, "Tags": TAGS} for i in ids
                    ]
                }
            ]
        },
        {"Filters": ANY, "MaxResults": 1000},
    )
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ids[:1000]})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ids[1000:]})
    assert ec2.terminate(ids) == ids


def test_iam_policy_allows_exactly_what_the_adapter_calls(client: t.Any) -> None:
    """docs/iam-policy.json: every operation _ec2.py calls, plus what CreateFleet needs, nothing else."""
    import json
    import pathlib
    import re

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _ec2

    source = pathlib.Path(_ec2.__file__).read_text(encoding="utf-8")
    methods = set(re.findall(r"self\.client\.([a-z_]+)\(", source)) | set(
        re.findall(r'get_paginator\("([a-z_]+)"\)', source)
    )
    methods.discard("get_paginator")
    api = {
        name: op
        for op, name in (
            (op, re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()) for op in client.meta.service_model.operation_names
        )
    }
    called = {"ec2:" + api[m] for m in methods}
    # An instant CreateFleet launches with the caller's own RunInstances and
    # CreateTags (for tags at creation) permissions.
    called |= {"ec2:RunInstances", "ec2:CreateTags"}
    # The interruption queue's adapter: its calls, on the queue only.
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _sqs

    sqs_calls = {
        "sqs:" + "".join(w.title() for w in m.split("_"))
        for m in re.findall(r"self\.client\.([a-z_]+)\(", pathlib.Path(_sqs.__file__).read_text(encoding="utf-8"))
    }
    assert sqs_calls == {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    root = pathlib.Path(_ec2.__file__).resolve().parents[2]
    policy = json.loads((root / "docs" / "iam-policy.json").read_text(encoding="utf-8"))
    allowed: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        actions = {actions} if isinstance(actions, str) else set(actions)
        if any(a.startswith("sqs:") for a in actions):
            assert statement["Resource"].startswith("arn:aws:sqs:"), "the queue's calls on the queue only"
        allowed |= actions
    assert allowed == called | sqs_calls


# --------------------------------------------------------------------------
# region and AWS configuration, as boto3 resolves them


# aws_files: tests/unit/conftest.py


@pytest.mark.parametrize(
    "preferred, env, expected",
    [
        ("us-west-2", {"AWS_REGION": "eu-north-1", "AWS_PROFILE": "lab"}, "us-west-2"),  # the conf's wins
        (None, {}, "ap-south-1"),  # ~/.aws/config's default profile
        (None, {"AWS_PROFILE": "lab"}, "eu-west-3"),  # the profile's
        (None, {"AWS_PROFILE": "lab", "AWS_DEFAULT_REGION": "ca-central-1"}, "ca-central-1"),
        (None, {"AWS_PROFILE": "lab", "AWS_REGION": "eu-north-1"}, "eu-north-1"),
    ],
)
def test_resolved_region(aws_files, monkeypatch, preferred, env, expected):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import resolved_region

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert resolved_region(preferred) == expected


def test_resolved_region_without_any_config(aws_files, monkeypatch):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import resolved_region

    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_files.parent / "missing"))
    assert resolved_region(None) == "us-east-1"


@pytest.mark.parametrize(
    "env, config, message",
    [
        ({"AWS_PROFILE": "nope"}, None, "AWS configuration: The config profile (nope) could not be found"),
        ({}, "[default\nregion = x\n", "AWS configuration: Unable to parse config file:"),
        ({"AWS_ENDPOINT_URL": "notaurl"}, None, "AWS_ENDPOINT_URL: 'notaurl' is not an http:// or https:// URL"),
        ({"AWS_ENDPOINT_URL_EC2": "http://:80"}, None, "AWS_ENDPOINT_URL_EC2: 'http://:80' is not an http"),
    ],
)
def test_aws_configuration_mistakes_are_one_line(aws_files, monkeypatch, env, config, message):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import resolved_region

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if config is not None:
        aws_files.write_text(config)
    with pytest.raises(EC2Error) as raised:
        resolved_region(None)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


# --------------------------------------------------------------------------
# one call where there were two (a stub left unused or a call not stubbed fails)

def test_the_first_launch_describes_its_image_once(ec2: EC2, stub: Stubber) -> None:
    """build_launch_spec resolves the image; the launch template then uses that answer."""
    _with_template(ec2, stub)  # one describe_images
    stub.add_response("create_fleet", {"Instances": [{"InstanceIds": ["i-1"]}]}, FLEET_PARAMS)
    assert ec2.resolve_image(IMAGE.id).id == IMAGE.id
    assert ec2.launch(1, SPEC).instance_ids == ("i-1",)
    assert ec2.calls["DescribeImages"] == 1


def _fleet_answer(*ids: str, state: str = "running") -> dict[str, t.Any]:
    when = datetime.datetime(2026, 11, 24, tzinfo=datetime.timezone.utc)
    instances = [{"InstanceId": i, "State": {"Name": state}, "LaunchTime": when, "Tags": TAGS} for i in ids]
    return {"Reservations": [{"Instances": instances}]}


def test_a_scale_in_poll_describes_its_fleet_once(ec2: EC2, stub: Stubber) -> None:
    stub.add_response("describe_instances", _fleet_answer("i-1", "i-2"), {"Filters": ANY, "MaxResults": 1000})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ["i-2"]})
    assert [i.id for i in ec2.describe_fleet()] == ["i-1", "i-2"]
    assert ec2.terminate(["i-2"]) == ["i-2"]
    assert dict(ec2.calls) == {"DescribeInstances": 1, "TerminateInstances": 1}


def test_terminate_describes_what_the_last_look_did_not_see(ec2: EC2, stub: Stubber) -> None:
    """An id the last describe_fleet did not return (launched since by someone else?) is asked about."""
    stub.add_response("describe_instances", _fleet_answer("i-1"), {"Filters": ANY, "MaxResults": 1000})
    stub.add_response("describe_instances", _fleet_answer("i-1", "i-2"), {"Filters": ANY, "MaxResults": 1000})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ["i-2"]})
    ec2.describe_fleet()
    assert ec2.terminate(["i-2", "i-stranger"]) == ["i-2"]
    assert dict(ec2.calls) == {"DescribeInstances": 2, "TerminateInstances": 1}


def test_terminate_describes_again_after_another_call(ec2: EC2, stub: Stubber) -> None:
    """What describe_fleet saw counts only while it is the last word: a call between, and terminate asks again."""
    stub.add_response("describe_instances", _fleet_answer("i-1", "i-2"), {"Filters": ANY, "MaxResults": 1000})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ["i-1"]})
    going = _fleet_answer("i-2", state="shutting-down")
    stub.add_response("describe_instances", going, {"Filters": ANY, "MaxResults": 1000})
    ec2.describe_fleet()
    assert ec2.terminate(["i-1"]) == ["i-1"]
    assert ec2.terminate(["i-1", "i-2"]) == []  # i-1 gone, i-2 already going
    assert dict(ec2.calls) == {"DescribeInstances": 2, "TerminateInstances": 1}


def _template_again(ec2: EC2, stub: Stubber) -> None:
    """A template made anew: the image is remembered, the rest asked again."""
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"Filters": ANY})
    stub.add_response(
        "create_launch_template",
        {"LaunchTemplate": {"LaunchTemplateId": "lt-2", "LaunchTemplateName": ec2.name, "DefaultVersionNumber": 1}},
        {
            "LaunchTemplateName": ec2.name,
            "VersionDescription": ANY,
            "LaunchTemplateData": ANY,
            "TagSpecifications": ANY,
        },
    )


VANISHED = ("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID lt-1, does not exist.")


def _create_fleet_finds_no_template(stub: Stubber, how: str) -> None:
    """EC2 says so as an error of CreateFleet ("refused") or as errors in its answer ("answered")."""
    if how == "refused":
        stub.add_client_error("create_fleet", VANISHED[0], VANISHED[1], 400, expected_params=FLEET_PARAMS)
    else:
        answer = {"Instances": [], "Errors": [{"ErrorCode": VANISHED[0], "ErrorMessage": VANISHED[1]}]}
        stub.add_response("create_fleet", answer, FLEET_PARAMS)


@pytest.mark.parametrize("how", ["refused", "answered"])
def test_a_vanished_template_is_made_anew_once(ec2: EC2, stub: Stubber, how: str) -> None:
    """Either way EC2 says it, recovered the same way, once."""
    for queue_template in (_with_template, _template_again):
        queue_template(ec2, stub)
        _create_fleet_finds_no_template(stub, how)
    with pytest.raises(EC2Error) as caught:
        ec2.launch(1, SPEC)
    assert caught.value.code == VANISHED[0]
    assert ec2.calls["CreateFleet"] == 2 and ec2.calls["CreateLaunchTemplate"] == 2


@pytest.mark.parametrize("how", ["refused", "answered"])
def test_a_launch_after_its_template_vanished_succeeds(ec2: EC2, stub: Stubber, how: str) -> None:
    _with_template(ec2, stub)
    _create_fleet_finds_no_template(stub, how)
    _template_again(ec2, stub)
    stub.add_response("create_fleet", {"Instances": [{"InstanceIds": ["i-1"]}]}, FLEET_PARAMS)
    assert ec2.launch(1, SPEC).instance_ids == ("i-1",)
    assert ec2.calls["DescribeImages"] == 1
