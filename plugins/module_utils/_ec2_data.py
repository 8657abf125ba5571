# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The EC2 adapter's pure half: what it sends and what it makes of the answers.

Dataclasses of the adapter's vocabulary (:class:`Instance`, :class:`Image`,
:class:`LaunchSpec`, ...), conversions of EC2 answers into them, the request
builders (launch template data, CreateFleet parameters, block device mappings,
security group rules) and the slaves' user data. No boto3, no clock, no
network: :class:`~._ec2.EC2` does the calls and passes the answers here, so
everything below is tested with plain tables
(tests/unit/plugins/module_utils/test_ec2_data.py).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import posixpath
import re
import shlex
import string
import typing as t
from dataclasses import dataclass, field

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_errors import (
    CAPACITY,
    LAUNCH_TEMPLATE,
    CapacityError,
    EC2Error,
)

BALANCER_TAG = "gbrowse-aws:balancer-id"
#: The data generation a slave was launched with (_decision.data_generation): after a sync the
#: balancer replaces the slaves whose tag differs (or is missing) by reading tags alone.
GENERATION_TAG = "gbrowse-aws:data-generation"
#: Tag of the slaves launched on-demand (the spot fallback): value ON_DEMAND_VALUE. Spot slaves have none.
LIFECYCLE_TAG = "gbrowse-aws:lifecycle"
ON_DEMAND_VALUE = "on-demand"
NAME_TAG_VALUE = "GBrowse Slave"

#: What a balancer id may look like: it becomes part of resource names
#: (launch templates allow only a few punctuation characters).
BALANCER_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Instance states that make up the fleet (everything but ``terminated``).
FLEET_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")

SLAVE_COMMAND = "/opt/gbrowse/etc/init.d/gbrowse-slave"  # the GBrowse cloud image
DEBIAN_SLAVE = "/usr/bin/gbrowse_slave"  # Debian's gbrowse package
DEBIAN_SLAVE_DEFAULTS = "/etc/default/gbrowse-slave"
DEBIAN_RUN_DIR = "/var/run/gbrowse"
DEBIAN_LOG_DIR = "/var/log/gbrowse"
SLAVE_USER = "www-data"
SYNCED_DATABASES = "/opt/gbrowse/databases"  # where the synced databases land on the slave

#: An ingress rule as compared: (protocol, from port, to port, kind, source), kind "cidr", "cidr6" or "group".
Rule = t.Tuple[str, int, int, str, str]


@dataclass(frozen=True)
class Instance:
    """One slave instance as DescribeInstances reports it."""

    id: str
    state: str  # EC2 state name: pending, running, shutting-down, stopping, stopped
    launched: float  # launch time, seconds since the epoch
    private_ip: str | None
    public_ip: str | None
    vpc_id: str | None
    subnet_id: str | None
    instance_type: str | None
    lifecycle: str | None  # "spot", or None for on-demand
    tags: t.Mapping[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    image_id: str | None = None
    state_reason: str | None = None  # e.g. "Server.SpotInstanceTermination"


@dataclass(frozen=True)
class Image:
    """An AMI: what the launch template needs of it."""

    id: str
    name: str | None
    root_device_name: str
    block_device_mappings: tuple[dict, ...] = ()
    creation_date: str | None = None


@dataclass(frozen=True)
class Subnet:
    """A subnet: its VPC and zone."""

    id: str
    vpc_id: str
    availability_zone: str | None
    cidr: str | None


@dataclass(frozen=True)
class LaunchSpec:
    """How to launch a slave: everything the launch template and CreateFleet need."""

    image_id: str
    instance_types: tuple[str, ...]
    spot_bid: float
    ports: tuple[int, ...]
    subnet_id: str | None = None
    availability_zone: str | None = None  # ignored when subnet_id is given (the subnet decides)
    security_group_ids: tuple[str, ...] = ()
    key_name: str | None = None
    data_snapshots: tuple[str, ...] = ()
    user_data: str | None = None  # None: start the slave on ``ports`` (see default_user_data)
    databases: str | None = None  # the master's databases directory, for default_user_data
    generation: str | None = None  # tagged on the slaves and their volumes as GENERATION_TAG


@dataclass(frozen=True)
class LaunchResult:
    """What CreateFleet did: instances launched and errors for the ones it could not."""

    instance_ids: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()
    fleet_id: str | None = None


# -- the slaves' user data and block devices ------------------------------------


def default_user_data(ports: t.Sequence[int], databases: str | None = None) -> str:
    """The slave's user data: mount the synced data, then start the slave on ``ports``, as the original did.

    The data volume (made by playbooks/sync.yml, docs/sync.md) is one ext4 file
    system labelled ``gbrowse-data``, holding ``databases/``, ``lib/mysql/`` and
    ``lib/postgresql/``: it is mounted on /srv/gbrowse-data and those trees are
    bind-mounted over the same paths under /opt/gbrowse, where the slave image
    has its GBrowse. The master sends the slave its data source configuration,
    with its own database paths: ``databases``, the master's databases
    directory (e.g. Debian's /var/lib/gbrowse/databases), gets the synced
    databases too. Database servers that started before their data was there
    are restarted. A slave launched without data snapshots starts as before.

    The slave starts the way its image provides: the GBrowse cloud image's
    /opt/gbrowse/etc/init.d/gbrowse-slave, else Debian's /usr/bin/gbrowse_slave,
    one per port, as www-data with www-data's groups. Not through Debian's
    /etc/init.d/gbrowse-slave: it runs the slave as root and on the ports of
    /etc/default/gbrowse-slave whatever it is told; and not with
    gbrowse_slave's own ``--user``, which keeps group 0, so the slave could
    not read Debian's root:www-data 0770 databases.
    """
    port_list = " ".join(str(int(p)) for p in ports)
    bind_databases = ""
    if databases and posixpath.normpath(databases) != SYNCED_DATABASES:
        if not posixpath.isabs(databases) or posixpath.normpath(databases) == "/" or "\n" in databases:
            raise ValueError(f"the master's databases directory must be an absolute path below /, not {databases!r}")
        target = shlex.quote(posixpath.normpath(databases))
        bind_databases = (
            "    # The master's data source configuration names its own databases directory.\n"
            "    if [ -d /srv/gbrowse-data/databases ]; then\n"
            f"        mkdir -p {target}\n"
            f"        mountpoint -q {target} || mount --bind /srv/gbrowse-data/databases {target}\n"
            "    fi\n"
        )
    return (
        "#!/bin/sh\n"
        "# GBrowse render slave (gbrowse_aws): the data volume of gbrowse_sync_aws_slave, then the slave.\n"
        "udevadm settle 2>/dev/null\n"
        "dev=\"\"; tries=0\n"
        "until dev=$(blkid -L gbrowse-data 2>/dev/null) || [ $tries -ge 5 ]; do tries=$((tries + 1)); sleep 1; done\n"
        'if [ -n "$dev" ]; then\n'
        "    mkdir -p /srv/gbrowse-data\n"
        '    mountpoint -q /srv/gbrowse-data || mount -o noatime "$dev" /srv/gbrowse-data\n'
        "    for tree in databases lib/mysql lib/postgresql; do\n"
        '        [ -d "/srv/gbrowse-data/$tree" ] || continue\n'
        '        mkdir -p "/opt/gbrowse/$tree"\n'
        '        mountpoint -q "/opt/gbrowse/$tree" || mount --bind "/srv/gbrowse-data/$tree" "/opt/gbrowse/$tree"\n'
        "    done\n"
        f"{bind_databases}"
        "    for unit in $(systemctl list-units --type=service --state=running --plain --no-legend"
        " 'mariadb*' 'mysql*' 'postgresql*' 2>/dev/null | cut -d ' ' -f 1); do systemctl restart \"$unit\"; done\n"
        "fi\n"
        f"if [ -x {SLAVE_COMMAND} ]; then\n"
        f"    exec {SLAVE_COMMAND} start {port_list}\n"
        "fi\n"
        "# Debian's gbrowse package: its init script would run the slave as root, on the ports of\n"
        f"# {DEBIAN_SLAVE_DEFAULTS} whatever it is told: start gbrowse_slave as www-data:www-data.\n"
        f"mkdir -p {DEBIAN_RUN_DIR} {DEBIAN_LOG_DIR}\n"
        f"chown {SLAVE_USER}:{SLAVE_USER} {DEBIAN_RUN_DIR} {DEBIAN_LOG_DIR}\n"
        f"for port in {port_list}; do\n"
        f"    setpriv --reuid={SLAVE_USER} --regid={SLAVE_USER} --init-groups {DEBIAN_SLAVE} --port \"$port\" --prefork 3 \\\n"
        f'        --log {DEBIAN_LOG_DIR}/gbrowse_slave.log --pid "{DEBIAN_RUN_DIR}/gbrowse-slave.$port.pid"\n'
        "done\n"
    )


def data_device_names(n: int) -> list[str]:
    """Device names for ``n`` data volumes, as the original: /dev/sdg1../dev/sdg15, /dev/sdh1, ..."""
    if n < 0:
        raise ValueError(f"negative number of devices: {n}")
    letters = string.ascii_lowercase[string.ascii_lowercase.index("g"):]
    names = []
    for i in range(n):
        letter, number = divmod(i, 15)
        if letter >= len(letters):
            raise ValueError(f"too many data volumes: {n}")
        names.append(f"/dev/sd{letters[letter]}{number + 1}")
    return names


def block_device_mappings(image: Image, snapshots: t.Sequence[str]) -> list[dict]:
    """The image's root device plus one volume per snapshot, all deleted on termination.

    The root mapping keeps the image's size and volume type (so the launch
    template neither shrinks nor changes it) and never names the image's
    snapshot: EC2 takes that from the image. Delete-on-termination is set
    explicitly because many images leave it off, and a slave must leave no
    volume behind.
    """
    root_ebs = _image_root_ebs(image)
    ebs: dict[str, t.Any] = {"DeleteOnTermination": True}
    for key in ("VolumeSize", "VolumeType", "Iops", "Throughput"):
        if root_ebs.get(key) is not None:
            ebs[key] = root_ebs[key]
    mappings: list[dict] = [{"DeviceName": image.root_device_name, "Ebs": ebs}]
    for name, snapshot in zip(data_device_names(len(snapshots)), snapshots):
        mappings.append({"DeviceName": name, "Ebs": {"SnapshotId": snapshot, "DeleteOnTermination": True}})
    return mappings


def _image_root_ebs(image: Image) -> dict[str, t.Any]:
    for mapping in image.block_device_mappings:
        if mapping.get("DeviceName") == image.root_device_name and "Ebs" in mapping:
            return dict(mapping["Ebs"])
    return {}


# -- tags ------------------------------------------------------------------


def our_tags(balancer_id: str, name: bool = True) -> list[dict[str, str]]:
    """The tags of everything a balancer creates (``name``: with Name=GBrowse Slave)."""
    tags = [{"Key": BALANCER_TAG, "Value": balancer_id}]
    if name:
        tags.append({"Key": "Name", "Value": NAME_TAG_VALUE})
    return tags


def tag_filter(balancer_id: str) -> dict[str, t.Any]:
    """The describe filter that scopes a call to one balancer's resources."""
    return {"Name": f"tag:{BALANCER_TAG}", "Values": [balancer_id]}


def tags_of(items: t.Iterable[t.Mapping[str, str]] | None) -> dict[str, str]:
    """EC2's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {item["Key"]: item.get("Value", "") for item in items or ()}


def carries(raw: t.Mapping[str, t.Any], balancer_id: str) -> bool:
    """Whether an EC2 resource (as described) carries ``balancer_id``: filters are trusted only with this check."""
    return tags_of(raw.get("Tags")).get(BALANCER_TAG) == balancer_id


# -- answers -> dataclasses ---------------------------------------------------


def instance_of(raw: t.Mapping[str, t.Any]) -> Instance:
    launched = raw.get("LaunchTime")
    return Instance(
        id=raw["InstanceId"],
        state=(raw.get("State") or {}).get("Name", "unknown"),
        launched=launched.timestamp() if hasattr(launched, "timestamp") else 0.0,
        private_ip=raw.get("PrivateIpAddress") or None,
        public_ip=raw.get("PublicIpAddress") or None,
        vpc_id=raw.get("VpcId"),
        subnet_id=raw.get("SubnetId"),
        instance_type=raw.get("InstanceType"),
        lifecycle=raw.get("InstanceLifecycle"),
        tags=tags_of(raw.get("Tags")),
        availability_zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        image_id=raw.get("ImageId"),
        state_reason=(raw.get("StateReason") or {}).get("Code") or None,
    )


def fleet_of(pages: t.Iterable[t.Mapping[str, t.Any]], balancer_id: str) -> list[Instance]:
    """The balancer's instances that are not terminated in DescribeInstances pages, oldest first.

    Belt and braces: never trust a filter with someone else's instance.
    """
    instances = [
        instance
        for page in pages
        for reservation in page.get("Reservations", ())
        for instance in map(instance_of, reservation.get("Instances", ()))
        if instance.tags.get(BALANCER_TAG) == balancer_id and instance.state in FLEET_STATES
    ]
    instances.sort(key=lambda i: (i.launched, i.id))
    return instances


def image_of(raw: t.Mapping[str, t.Any]) -> Image:
    return Image(
        id=raw["ImageId"],
        name=raw.get("Name"),
        root_device_name=raw.get("RootDeviceName") or "/dev/xvda",
        block_device_mappings=tuple(dict(m) for m in raw.get("BlockDeviceMappings") or ()),
        creation_date=raw.get("CreationDate"),
    )


def newest_image(images: t.Iterable[t.Mapping[str, t.Any]]) -> Image:
    """The newest of DescribeImages' answer (creation date, then name, then id: never a tie)."""
    return image_of(max(images, key=lambda i: (i.get("CreationDate") or "", i.get("Name") or "", i["ImageId"])))


def subnet_of(raw: t.Mapping[str, t.Any]) -> Subnet:
    return Subnet(raw["SubnetId"], raw["VpcId"], raw.get("AvailabilityZone"), raw.get("CidrBlock"))


# -- the launch template and CreateFleet ----------------------------------------


def template_data(spec: LaunchSpec, image: Image, balancer_id: str) -> dict[str, t.Any]:
    """The launch template data for ``spec`` (``image`` is its resolved ``image_id``)."""
    user_data = spec.user_data if spec.user_data is not None else default_user_data(spec.ports, spec.databases)
    tags = our_tags(balancer_id)
    if spec.generation:
        tags.append({"Key": GENERATION_TAG, "Value": spec.generation})
    data: dict[str, t.Any] = {
        "ImageId": image.id,
        "BlockDeviceMappings": block_device_mappings(image, spec.data_snapshots),
        "UserData": base64.b64encode(user_data.encode("utf-8")).decode("ascii"),
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": list(tags)},
        ],
    }
    if spec.security_group_ids:
        data["SecurityGroupIds"] = list(spec.security_group_ids)
    if spec.key_name:
        data["KeyName"] = spec.key_name
    return data


def canonical(value: t.Any) -> t.Any:
    """Order-free form of launch template data: lists sorted, so two equal templates compare equal."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        items = [canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def comparable(data: t.Mapping[str, t.Any]) -> t.Any:
    """Launch template data as compared: only the tag specifications we write count."""
    data = dict(data)
    specs = [s for s in data.get("TagSpecifications") or () if s.get("ResourceType") in ("instance", "volume")]
    data["TagSpecifications"] = specs
    return canonical(data)


def price(bid: float) -> str:
    """A spot bid as EC2 takes it: at most 6 decimals, no trailing zeros."""
    return f"{bid:.6f}".rstrip("0").rstrip(".")


def fleet_request(
    count: int,
    spec: LaunchSpec,
    template_id: str,
    version: int | str,
    balancer_id: str,
    on_demand_price: float | None = None,
) -> dict[str, t.Any]:
    """The CreateFleet parameters for ``count`` slaves (without ClientToken): spot ones, or with
    ``on_demand_price`` (USD/hour a slave may cost) on-demand ones.

    Every instance type is one override: the more types, the more spot pools
    EC2 may choose from. An on-demand fleet uses the same launch template and
    overrides (without the spot bid), the lowest-priced type, at most
    ``count * on_demand_price`` an hour in all (EC2 launches nothing dearer),
    and tags its instances ``gbrowse-aws:lifecycle=on-demand`` at launch.
    """
    if not spec.instance_types:
        raise ValueError("no instance type given")
    if not spec.spot_bid > 0:
        raise ValueError(f"invalid spot bid {spec.spot_bid!r}")
    if on_demand_price is not None and not on_demand_price > 0:
        raise ValueError(f"invalid on-demand price {on_demand_price!r}")
    overrides = []
    for instance_type in dict.fromkeys(spec.instance_types):
        override: dict[str, t.Any] = {"InstanceType": instance_type}
        if on_demand_price is None:
            override["MaxPrice"] = price(spec.spot_bid)
        if spec.subnet_id:
            override["SubnetId"] = spec.subnet_id
        elif spec.availability_zone:
            override["AvailabilityZone"] = spec.availability_zone
        overrides.append(override)
    tags = [{"ResourceType": "fleet", "Tags": our_tags(balancer_id, name=False)}]
    request: dict[str, t.Any] = {"Type": "instant"}
    if on_demand_price is None:
        request["SpotOptions"] = {"AllocationStrategy": "price-capacity-optimized"}
        capacity = "spot"
    else:
        request["OnDemandOptions"] = {
            "AllocationStrategy": "lowest-price",
            "MaxTotalPrice": price(count * on_demand_price),
        }
        capacity = "on-demand"
        # The launch template's instance tags too: the instance carries them all whether
        # EC2 merges these with the template's or lets them replace those.
        instance_tags = our_tags(balancer_id) + [{"Key": LIFECYCLE_TAG, "Value": ON_DEMAND_VALUE}]
        if spec.generation:
            instance_tags.append({"Key": GENERATION_TAG, "Value": spec.generation})
        tags.append({"ResourceType": "instance", "Tags": instance_tags})
    request.update(
        {
            "TargetCapacitySpecification": {"TotalTargetCapacity": count, "DefaultTargetCapacityType": capacity},
            "LaunchTemplateConfigs": [
                {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": str(version)},
                    "Overrides": overrides,
                }
            ],
            "TagSpecifications": tags,
        }
    )
    return request


def highest_spot_price(history: t.Iterable[t.Mapping[str, t.Any]]) -> float | None:
    """The highest of the latest spot prices per (instance type, zone) in DescribeSpotPriceHistory
    answers, None when there is none. The fleet may land in any offered pool: counting the
    dearest keeps the spend cap safe."""
    latest: dict[tuple[str, str], tuple[t.Any, float]] = {}
    for item in history:
        try:
            value = float(item["SpotPrice"])
        except (KeyError, TypeError, ValueError):
            continue
        key = (str(item.get("InstanceType")), str(item.get("AvailabilityZone")))
        when = item.get("Timestamp")
        stamp = when.timestamp() if hasattr(when, "timestamp") else 0.0
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, value)
    return max((value for dummy, value in latest.values()), default=None)


def versions_to_prune(versions: t.Iterable[t.Mapping[str, t.Any]], keep: t.Collection[int]) -> list[int]:
    """Launch template versions to delete: every one but the default and those in ``keep``, oldest first."""
    return sorted(
        int(v["VersionNumber"])
        for v in versions
        if not v.get("DefaultVersion") and int(v["VersionNumber"]) not in keep
    )


def fleet_errors(answer: t.Mapping[str, t.Any]) -> tuple[tuple[str, str], ...]:
    """CreateFleet's errors as (code, message)."""
    return tuple(
        (str(e.get("ErrorCode", "Unknown")), str(e.get("ErrorMessage", ""))) for e in answer.get("Errors") or ()
    )


def template_vanished(answer: t.Mapping[str, t.Any]) -> bool:
    """CreateFleet launched nothing because the launch template it names is gone (deleted by hand?)."""
    launched = any(group.get("InstanceIds") for group in answer.get("Instances") or ())
    return not launched and any(code in LAUNCH_TEMPLATE.stale_reference for code, dummy in fleet_errors(answer))


def launch_result(count: int, answer: t.Mapping[str, t.Any]) -> LaunchResult:
    """What CreateFleet's answer means: the launched ids and EC2's errors for the rest.

    A partial launch is not an exception. Raises :class:`CapacityError` when
    nothing was launched and every error is about capacity, price or quota;
    :class:`EC2Error` for anything else.
    """
    ids: list[str] = []
    for group in answer.get("Instances") or ():
        ids.extend(group.get("InstanceIds") or ())
    errors = fleet_errors(answer)
    result = LaunchResult(tuple(dict.fromkeys(ids)), errors, answer.get("FleetId"))
    if result.instance_ids:
        return result
    if not errors:
        raise EC2Error(f"Failed to launch {count} slave(s): no instances and no errors", code="Unknown")
    summary = "; ".join(f"{c}: {m}" for c, m in dict.fromkeys(errors))
    codes = [error[0] for error in errors]
    if all(c in CAPACITY for c in codes):
        raise CapacityError(f"Failed to launch {count} slave(s): {summary}", code=codes[0], errors=errors)
    other = next(c for c in codes if c not in CAPACITY)
    raise EC2Error(f"Failed to launch {count} slave(s): {summary}", code=other)


# -- the security group -----------------------------------------------------------


def ingress_rules(
    ports: t.Iterable[int], *, source_cidr: str | None = None, source_group_id: str | None = None, ssh: bool = False
) -> frozenset[Rule]:
    """The ingress the slaves need: TCP on each port (and 22 when ``ssh``) from the master's sources.

    ``source_cidr`` may be a bare address (then /32, or /128).
    """
    if not source_cidr and not source_group_id:
        raise ValueError("a security group needs a source: source_cidr or source_group_id")
    wanted_ports = sorted({int(p) for p in ports} | ({22} if ssh else set()))
    if not wanted_ports or any(not 0 < p < 65536 for p in wanted_ports):
        raise ValueError(f"invalid ports {wanted_ports}")
    sources: list[tuple[str, str]] = []
    if source_cidr:
        network = ipaddress.ip_network(source_cidr.strip(), strict=False)
        sources.append(("cidr6" if network.version == 6 else "cidr", str(network)))
    if source_group_id:
        sources.append(("group", source_group_id))
    return frozenset(("tcp", p, p, kind, value) for p in wanted_ports for kind, value in sources)


def permissions_of(raw: t.Iterable[t.Mapping[str, t.Any]]) -> set[Rule]:
    """A group's IpPermissions as rules."""
    present = set()
    for perm in raw:
        proto = str(perm.get("IpProtocol", ""))
        low, high = int(perm.get("FromPort", -1)), int(perm.get("ToPort", -1))
        for r in perm.get("IpRanges") or ():
            present.add((proto, low, high, "cidr", r["CidrIp"]))
        for r in perm.get("Ipv6Ranges") or ():
            present.add((proto, low, high, "cidr6", r["CidrIpv6"]))
        for r in perm.get("UserIdGroupPairs") or ():
            present.add((proto, low, high, "group", r["GroupId"]))
    return present


def ip_permissions(rules: t.Iterable[Rule]) -> list[dict[str, t.Any]]:
    """Rules as the IpPermissions of Authorize/RevokeSecurityGroupIngress."""
    perms = []
    for proto, low, high, kind, value in rules:
        perm: dict[str, t.Any] = {"IpProtocol": proto, "FromPort": low, "ToPort": high}
        if kind == "cidr":
            perm["IpRanges"] = [{"CidrIp": value, "Description": "GBrowse master"}]
        elif kind == "cidr6":
            perm["Ipv6Ranges"] = [{"CidrIpv6": value, "Description": "GBrowse master"}]
        else:
            perm["UserIdGroupPairs"] = [{"GroupId": value, "Description": "GBrowse master"}]
        perms.append(perm)
    return perms
