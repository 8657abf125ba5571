# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one EC2 adapter: the balancer's slaves, launch template and security group.

Everything the balancer, the modules and the playbooks do on EC2 goes through
:class:`EC2`. It only ever describes, changes or deletes resources carrying the
tag ``gbrowse-aws:balancer-id`` with its own balancer id, and it tags every
resource it creates at creation time, so a restarted balancer finds its fleet
again from tags alone.

Cost per call, in EC2 API requests (``EC2.calls`` counts them):

- :meth:`EC2.describe_fleet`: one ``DescribeInstances`` for up to 1000 slaves.
- :meth:`EC2.ensure_launch_template`: none when the spec is the one already
  ensured by this object; otherwise one or two describes, plus a create or a
  new version and a default switch only when the template data changed.
- :meth:`EC2.launch`: one ``CreateFleet`` (type ``instant``: the answer holds the
  instances or the errors, no request stays open to pile up).
- :meth:`EC2.terminate`: one describe plus one ``TerminateInstances`` per 1000.

Retries are botocore's ("standard" mode, jittered exponential backoff on
throttling, 5xx and connection errors; see :func:`make_client`); nothing here
loops by hand. API errors become :class:`EC2Error` (or :class:`CapacityError`)
whose message names the failed action.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import ipaddress
import json
import os
import posixpath
import re
import shlex
import string
import typing as t
import urllib.parse
import uuid
from dataclasses import dataclass, field

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported when used
    boto3 = None
    HAS_BOTO3 = False
else:
    HAS_BOTO3 = True


BALANCER_TAG = "gbrowse-aws:balancer-id"
NAME_TAG_VALUE = "GBrowse Slave"
USER_AGENT = "gbrowse_aws/0.1"

#: What a balancer id may look like: it becomes part of resource names
#: (launch templates allow only a few punctuation characters).
BALANCER_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Instance states that make up the fleet (everything but ``terminated``).
FLEET_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")

#: Error codes that mean "not now": no capacity, price below the spot price,
#: account limits. The caller logs them and tries again on a later poll.
CAPACITY_ERROR_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "MaxSpotFleetRequestCountExceeded",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
    }
)

SLAVE_COMMAND = "/opt/gbrowse/etc/init.d/gbrowse-slave"  # the GBrowse cloud image
DEBIAN_SLAVE = "/usr/bin/gbrowse_slave"  # Debian's gbrowse package
DEBIAN_SLAVE_DEFAULTS = "/etc/default/gbrowse-slave"
DEBIAN_RUN_DIR = "/var/run/gbrowse"
DEBIAN_LOG_DIR = "/var/log/gbrowse"
SLAVE_USER = "www-data"
SYNCED_DATABASES = "/opt/gbrowse/databases"  # where the synced databases land on the slave
DESCRIBE_PAGE_SIZE = 1000  # the most DescribeInstances returns per call
TERMINATE_BATCH = 1000  # the most TerminateInstances takes per call
DEFAULT_MAX_ATTEMPTS = 8


class EC2Error(Exception):
    """An EC2 call failed. ``code`` is the AWS error code (or the botocore
    exception's class name for errors without one, e.g. a connection error)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CapacityError(EC2Error):
    """Nothing could be launched for lack of capacity, price or quota.

    Expected now and then on the spot market; the caller logs it and tries
    again on a later poll. ``errors`` holds every (code, message) EC2 gave.
    """

    def __init__(self, message: str, code: str | None = None, errors: t.Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message, code)
        self.errors = tuple(errors)


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


@dataclass(frozen=True)
class LaunchResult:
    """What CreateFleet did: instances launched and errors for the ones it could not."""

    instance_ids: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()
    fleet_id: str | None = None


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


#: The region when nothing names one (conf, instance metadata, environment, AWS config).
DEFAULT_REGION = "us-east-1"

#: Endpoint variables botocore reads itself; checked first so that a typo is one clear line.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2")


def check_endpoint_url(url: str, name: str = "endpoint_url") -> str:
    """``url`` when it is an http(s) URL with a host; EC2Error naming ``name`` otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # ValueError when out of range
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
    except ValueError:
        ok = False
    if not ok:
        raise EC2Error(f"{name}: {url!r} is not an http:// or https:// URL with a host", code="InvalidEndpoint")
    return url


def aws_session(environ: t.Mapping[str, str] | None = None, profile: str | None = None) -> t.Any:
    """boto3's Session as every AWS tool builds it (AWS_PROFILE, AWS_CONFIG_FILE, ~/.aws/config), checked.

    A missing profile, an unparsable config file or a malformed endpoint
    variable raises EC2Error with one line, before any AWS request.
    """
    if not HAS_BOTO3:
        raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
    environ = os.environ if environ is None else environ
    for name in ENDPOINT_VARIABLES:
        if environ.get(name):
            check_endpoint_url(environ[name], name)
    try:
        session = boto3.session.Session(profile_name=profile)
        session.region_name  # pylint: disable=pointless-statement  # parses the config file now
        session._session.full_config  # pylint: disable=protected-access,pointless-statement
    except BotoCoreError as exc:  # ProfileNotFound, ConfigParseError, ...
        raise EC2Error(f"AWS configuration: {exc}", code=type(exc).__name__) from None
    return session


def resolved_region(
    preferred: str | None = None, environ: t.Mapping[str, str] | None = None, session: t.Any = None
) -> str:
    """The region to work in: ``preferred`` (the conf's, else the instance's), else AWS_REGION, else the
    AWS config's as boto3 resolves it (AWS_DEFAULT_REGION, the profile's ``region``), else us-east-1."""
    environ = os.environ if environ is None else environ
    if preferred:
        return preferred
    if environ.get("AWS_REGION"):
        return environ["AWS_REGION"]
    session = session or aws_session(environ)
    return session.region_name or DEFAULT_REGION


def make_client(
    region: str | None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
) -> t.Any:
    """An EC2 client from the standard boto3 credential chain.

    Explicit keys win over the chain (environment, shared config/profile, the
    instance's IAM role through IMDSv2). ``endpoint_url`` None lets botocore
    apply ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_EC2`` itself. Retries:
    botocore "standard" mode, ``max_attempts`` tries in all, jittered
    exponential backoff on throttling, 5xx and connection errors.
    """
    if not HAS_BOTO3:
        raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra=USER_AGENT,
    )
    try:
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            profile_name=profile,
            region_name=region,
        )
        return session.client("ec2", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:  # NoRegionError, ProfileNotFound, ...
        raise EC2Error(f"Failed to create an EC2 client: {exc}", code=type(exc).__name__) from exc


@contextlib.contextmanager
def _api(action: str) -> t.Iterator[None]:
    """Turn botocore errors into EC2Error("Failed to <action>: <code>: <message>")."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        cls = CapacityError if code in CAPACITY_ERROR_CODES else EC2Error
        raise cls(f"Failed to {action}: {code}: {message}", code=code) from exc
    except BotoCoreError as exc:
        raise EC2Error(f"Failed to {action}: {exc}", code=type(exc).__name__) from exc


def _code(exc: EC2Error) -> str:
    return exc.code or ""


def _tags(items: t.Iterable[t.Mapping[str, str]] | None) -> dict[str, str]:
    return {item["Key"]: item.get("Value", "") for item in items or ()}


def _canonical(value: t.Any) -> t.Any:
    """Order-free form of launch template data: lists sorted, so two equal templates compare equal."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


class EC2:
    """The balancer's view of EC2, limited to resources tagged with its id."""

    def __init__(self, client: t.Any, balancer_id: str) -> None:
        if not HAS_BOTO3:
            raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
        if not isinstance(balancer_id, str) or not BALANCER_ID_PATTERN.fullmatch(balancer_id):
            raise ValueError(f"invalid balancer id {balancer_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        self.client = client
        self.balancer_id = balancer_id
        #: API calls made on the client since this object was made, by operation name
        #: (counted by a botocore event hook; paging counts one call per page).
        self.calls: collections.Counter[str] = collections.Counter()
        #: HTTP attempts, retries included, by operation name.
        self.attempts: collections.Counter[str] = collections.Counter()
        # before-parameter-build fires once per API call, even when another
        # handler (a Stubber, a cache) answers the call without sending it.
        client.meta.events.register_first("before-parameter-build.ec2", self._count_call)
        client.meta.events.register_first("before-send.ec2", self._count_attempt)
        self._template: tuple[LaunchSpec, str, int] | None = None  # (spec, template id, version)
        self._images: dict[str, Image] = {}
        self._group: tuple[tuple, str] | None = None  # (arguments, group id)

    # -- bookkeeping ------------------------------------------------------

    def _count_call(self, model: t.Any = None, **kwargs: t.Any) -> None:
        self.calls[getattr(model, "name", "?")] += 1

    def _count_attempt(self, event_name: str = "", **kwargs: t.Any) -> None:
        self.attempts[event_name.rsplit(".", 1)[-1]] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def name(self) -> str:
        """Name of the launch template and security group of this balancer."""
        return f"gbrowse-slave-{self.balancer_id}"

    def _our_tags(self, name: bool = True) -> list[dict[str, str]]:
        tags = [{"Key": BALANCER_TAG, "Value": self.balancer_id}]
        if name:
            tags.append({"Key": "Name", "Value": NAME_TAG_VALUE})
        return tags

    def _tag_filter(self) -> dict[str, t.Any]:
        return {"Name": f"tag:{BALANCER_TAG}", "Values": [self.balancer_id]}

    # -- the fleet --------------------------------------------------------

    def describe_fleet(self) -> list[Instance]:
        """Our instances that are not terminated, oldest first. One call per 1000."""
        instances: list[Instance] = []
        with _api("describe instances"):
            pages = self.client.get_paginator("describe_instances").paginate(
                Filters=[self._tag_filter(), {"Name": "instance-state-name", "Values": list(FLEET_STATES)}],
                PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE},
            )
            for page in pages:
                for reservation in page.get("Reservations", ()):
                    for raw in reservation.get("Instances", ()):
                        instance = _instance(raw)
                        # Belt and braces: never trust a filter with someone else's instance.
                        if instance.tags.get(BALANCER_TAG) == self.balancer_id and instance.state in FLEET_STATES:
                            instances.append(instance)
        instances.sort(key=lambda i: (i.launched, i.id))
        return instances

    def terminate(self, instance_ids: t.Iterable[str]) -> list[str]:
        """Terminate those of ``instance_ids`` that are ours and not already going.

        Anything else (foreign, untagged, unknown, already shutting down) is
        left alone. Returns the ids actually asked to terminate.
        """
        wanted = list(dict.fromkeys(instance_ids))
        if not wanted:
            return []
        ours = {i.id for i in self.describe_fleet() if i.state != "shutting-down"}
        victims = [i for i in wanted if i in ours]
        for start in range(0, len(victims), TERMINATE_BATCH):
            with _api("terminate instances"):
                self.client.terminate_instances(InstanceIds=victims[start:start + TERMINATE_BATCH])
        return victims

    # -- images and subnets -----------------------------------------------

    def resolve_image(self, image_id_or_name: str, *, owners: t.Sequence[str] | None = ("self",)) -> Image:
        """An AMI by id (``ami-...``), or the newest available one whose name contains the text.

        Name lookups search ``owners`` (default: this account's own images, so a
        stranger's public AMI with a matching name is never picked); pass
        ``owners=None`` to search every image this account may launch.
        """
        text = (image_id_or_name or "").strip()
        if not text:
            raise EC2Error("No image given", code="InvalidAMIName")
        if re.fullmatch(r"ami-[0-9a-f]+", text):
            try:
                with _api(f"describe image {text}"):
                    images = self.client.describe_images(ImageIds=[text])["Images"]
            except EC2Error as exc:
                if _code(exc).startswith("InvalidAMIID"):
                    raise EC2Error(f"Image {text} not found", code=exc.code) from exc
                raise
            if not images:
                raise EC2Error(f"Image {text} not found", code="InvalidAMIID.NotFound")
            return _image(images[0])
        params: dict[str, t.Any] = {
            "Filters": [
                {"Name": "name", "Values": [f"*{text}*"]},
                {"Name": "state", "Values": ["available"]},
            ]
        }
        if owners:
            params["Owners"] = list(owners)
        with _api(f"describe images named like {text!r}"):
            images = self.client.describe_images(**params)["Images"]
        if not images:
            where = f" owned by {', '.join(owners)}" if owners else ""
            raise EC2Error(f"No available image whose name contains {text!r}{where}", code="InvalidAMIName.NotFound")
        newest = max(images, key=lambda i: (i.get("CreationDate") or "", i.get("Name") or "", i["ImageId"]))
        return _image(newest)

    def describe_subnet(self, subnet_id: str) -> Subnet:
        """A subnet's VPC and zone (the security group must live in the slaves' VPC)."""
        with _api(f"describe subnet {subnet_id}"):
            subnets = self.client.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        if not subnets:
            raise EC2Error(f"Subnet {subnet_id} not found", code="InvalidSubnetID.NotFound")
        raw = subnets[0]
        return Subnet(raw["SubnetId"], raw["VpcId"], raw.get("AvailabilityZone"), raw.get("CidrBlock"))

    def subnet_vpc(self, subnet_id: str) -> str:
        """The VPC of ``subnet_id``."""
        return self.describe_subnet(subnet_id).vpc_id

    def find_security_group(self, name_or_id: str, subnet_id: str | None = None) -> str:
        """The id of an existing security group given in the conf (``security_group``).

        An ``sg-...`` id is checked to exist; a name is looked up in the VPC of
        ``subnet_id`` when given, else everywhere (and must then be unique).
        The group is only referenced, never changed: it need not carry our tag.
        """
        text = (name_or_id or "").strip()
        if re.fullmatch(r"sg-[0-9a-f]+", text):
            try:
                with _api(f"describe security group {text}"):
                    groups = self.client.describe_security_groups(GroupIds=[text])["SecurityGroups"]
            except EC2Error as exc:
                if "NotFound" in _code(exc):
                    raise EC2Error(f"Security group {text} not found", code=exc.code) from exc
                raise
            if not groups:
                raise EC2Error(f"Security group {text} not found", code="InvalidGroup.NotFound")
            return groups[0]["GroupId"]
        filters = [{"Name": "group-name", "Values": [text]}]
        where = ""
        if subnet_id:
            vpc_id = self.subnet_vpc(subnet_id)
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
            where = f" in {vpc_id}"
        with _api(f"describe security group {text!r}"):
            groups = self.client.describe_security_groups(Filters=filters)["SecurityGroups"]
        if not groups:
            raise EC2Error(f"No security group named {text!r}{where}", code="InvalidGroup.NotFound")
        if len(groups) > 1:
            ids = ", ".join(sorted(g["GroupId"] for g in groups))
            raise EC2Error(
                f"Several security groups are named {text!r} ({ids}): give its id or a subnet", code="Ambiguous"
            )
        return groups[0]["GroupId"]

    # -- the launch template ----------------------------------------------

    def template_data(self, spec: LaunchSpec, image: Image) -> dict[str, t.Any]:
        """The launch template data for ``spec`` (``image`` is its resolved ``image_id``)."""
        user_data = spec.user_data if spec.user_data is not None else default_user_data(spec.ports, spec.databases)
        data: dict[str, t.Any] = {
            "ImageId": image.id,
            "BlockDeviceMappings": block_device_mappings(image, spec.data_snapshots),
            "UserData": base64.b64encode(user_data.encode("utf-8")).decode("ascii"),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": self._our_tags()},
                {"ResourceType": "volume", "Tags": self._our_tags()},
            ],
        }
        if spec.security_group_ids:
            data["SecurityGroupIds"] = list(spec.security_group_ids)
        if spec.key_name:
            data["KeyName"] = spec.key_name
        return data

    def ensure_launch_template(self, spec: LaunchSpec) -> str:
        """The id of our launch template, holding ``spec``'s data in its default version.

        Creates the template (tagged at creation) when missing; adds a version
        and makes it the default only when the data differs from the default
        version's. Remembers the last spec: asking again with an equal spec
        makes no API call at all.
        """
        if self._template is not None and self._template[0] == spec:
            return self._template[1]
        image = self._images.get(spec.image_id)
        if image is None:
            image = self._images[spec.image_id] = self.resolve_image(spec.image_id)
        data = self.template_data(spec, image)
        template = self._find_template()
        if template is None:
            created = self._create_template(data)
            if created is not None:
                self._template = (spec, created[0], created[1])
                return created[0]
            template = self._find_template()  # lost a race with another balancer of the same id
            if template is None:
                raise EC2Error(
                    f"A launch template named {self.name} exists but does not carry {BALANCER_TAG}={self.balancer_id}",
                    code="InvalidLaunchTemplateName.AlreadyExistsException",
                )
        template_id = template["LaunchTemplateId"]
        with _api(f"describe launch template {template_id}"):
            versions = self.client.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=["$Default"]
            )["LaunchTemplateVersions"]
        current = versions[0] if versions else {}
        version = int(current.get("VersionNumber", 0))
        if not versions or _comparable(current.get("LaunchTemplateData") or {}) != _comparable(data):
            with _api(f"create a version of launch template {template_id}"):
                created_version = self.client.create_launch_template_version(
                    LaunchTemplateId=template_id, LaunchTemplateData=data, VersionDescription="gbrowse_aws slave"
                )["LaunchTemplateVersion"]
            version = int(created_version["VersionNumber"])
            with _api(f"set the default version of launch template {template_id}"):
                self.client.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
        self._template = (spec, template_id, version)
        return template_id

    @property
    def template_version(self) -> int | None:
        """The version launches use (the last ensured), None before the first ensure."""
        return self._template[2] if self._template else None

    def owns_template_or_group(self) -> bool:
        """Whether this balancer still has a launch template or a security group (two describes)."""
        return self._find_template() is not None or bool(self._find_groups())

    def _find_template(self) -> dict[str, t.Any] | None:
        with _api("describe launch templates"):
            found = self.client.describe_launch_templates(
                Filters=[self._tag_filter(), {"Name": "launch-template-name", "Values": [self.name]}]
            )["LaunchTemplates"]
        ours = [
            lt
            for lt in found
            if lt.get("LaunchTemplateName") == self.name and _tags(lt.get("Tags")).get(BALANCER_TAG) == self.balancer_id
        ]
        return ours[0] if ours else None

    def _create_template(self, data: dict[str, t.Any]) -> tuple[str, int] | None:
        """Create our template: (id, version), or None when the name is already taken."""
        try:
            with _api(f"create launch template {self.name}"):
                created = self.client.create_launch_template(
                    LaunchTemplateName=self.name,
                    VersionDescription="gbrowse_aws slave",
                    LaunchTemplateData=data,
                    TagSpecifications=[{"ResourceType": "launch-template", "Tags": self._our_tags(name=False)}],
                )["LaunchTemplate"]
        except EC2Error as exc:
            if "AlreadyExists" in _code(exc):
                return None
            raise
        return created["LaunchTemplateId"], int(created.get("DefaultVersionNumber") or 1)

    def delete_launch_template(self) -> bool:
        """Delete our launch template. True when none of ours is left (also when there was none)."""
        with _api("describe launch templates"):
            found = self.client.describe_launch_templates(Filters=[self._tag_filter()])["LaunchTemplates"]
        for template in found:
            if _tags(template.get("Tags")).get(BALANCER_TAG) != self.balancer_id:
                continue
            try:
                with _api(f"delete launch template {template['LaunchTemplateId']}"):
                    self.client.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
            except EC2Error as exc:
                if "NotFound" not in _code(exc):
                    raise
        self._template = None
        return True

    # -- launching --------------------------------------------------------

    def fleet_request(self, count: int, spec: LaunchSpec, template_id: str, version: int | str) -> dict[str, t.Any]:
        """The CreateFleet parameters for ``count`` spot slaves (without ClientToken)."""
        if not spec.instance_types:
            raise ValueError("no instance type given")
        if not spec.spot_bid > 0:
            raise ValueError(f"invalid spot bid {spec.spot_bid!r}")
        overrides = []
        for instance_type in dict.fromkeys(spec.instance_types):
            override: dict[str, t.Any] = {"InstanceType": instance_type, "MaxPrice": _price(spec.spot_bid)}
            if spec.subnet_id:
                override["SubnetId"] = spec.subnet_id
            elif spec.availability_zone:
                override["AvailabilityZone"] = spec.availability_zone
            overrides.append(override)
        return {
            "Type": "instant",
            "SpotOptions": {"AllocationStrategy": "price-capacity-optimized"},
            "TargetCapacitySpecification": {"TotalTargetCapacity": count, "DefaultTargetCapacityType": "spot"},
            "LaunchTemplateConfigs": [
                {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": str(version)},
                    "Overrides": overrides,
                }
            ],
            "TagSpecifications": [{"ResourceType": "fleet", "Tags": self._our_tags(name=False)}],
        }

    def launch(self, count: int, spec: LaunchSpec) -> LaunchResult:
        """Launch ``count`` spot slaves with one instant CreateFleet.

        Returns the launched ids and EC2's errors for the rest (a partial launch
        is not an exception). Raises :class:`CapacityError` when nothing was
        launched and every error is about capacity, price or quota;
        :class:`EC2Error` for anything else.
        """
        if count < 0:
            raise ValueError(f"invalid number of slaves to launch: {count}")
        if count == 0:
            return LaunchResult(())
        answer = self._create_fleet(count, spec)
        if not _launched(answer) and any(
            _code_of(e).startswith("InvalidLaunchTemplate") for e in answer.get("Errors") or ()
        ):
            answer = self._create_fleet(count, spec, again=True)
        ids: list[str] = []
        for group in answer.get("Instances") or ():
            ids.extend(group.get("InstanceIds") or ())
        errors = tuple(
            (str(e.get("ErrorCode", "Unknown")), str(e.get("ErrorMessage", ""))) for e in answer.get("Errors") or ()
        )
        result = LaunchResult(tuple(dict.fromkeys(ids)), errors, answer.get("FleetId"))
        if result.instance_ids:
            return result
        if not errors:
            raise EC2Error(f"Failed to launch {count} slave(s): no instances and no errors", code="Unknown")
        code = errors[0][0]
        summary = "; ".join(f"{c}: {m}" for c, m in dict.fromkeys(errors))
        codes = [error[0] for error in errors]
        if all(c in CAPACITY_ERROR_CODES for c in codes):
            raise CapacityError(f"Failed to launch {count} slave(s): {summary}", code=code, errors=errors)
        other = next(c for c in codes if c not in CAPACITY_ERROR_CODES)
        raise EC2Error(f"Failed to launch {count} slave(s): {summary}", code=other)

    def _create_fleet(self, count: int, spec: LaunchSpec, again: bool = False) -> dict[str, t.Any]:
        if again:
            # Our template vanished behind our back (deleted by hand?): make it anew, once.
            self._template = None
        template_id = self.ensure_launch_template(spec)
        params = self.fleet_request(count, spec, template_id, self.template_version or "$Default")
        # One token per request: botocore's retry of this very request (after a
        # timeout, say) cannot launch twice.
        params["ClientToken"] = str(uuid.uuid4())
        try:
            with _api(f"launch {count} slave(s)"):
                return self.client.create_fleet(**params)
        except EC2Error as exc:
            if again or not _code(exc).startswith("InvalidLaunchTemplate"):
                raise
        return self._create_fleet(count, spec, again=True)

    def forget(self) -> None:
        """Drop what this object remembers (template, image, security group): ask EC2 again next time.

        For a caller that learns a resource was changed behind its back, e.g.
        a launch failing with ``InvalidGroup.NotFound``.
        """
        self._template = None
        self._images.clear()
        self._group = None

    # -- the security group -----------------------------------------------

    def ensure_security_group(
        self,
        vpc_id: str | None,
        ports: t.Iterable[int],
        *,
        source_cidr: str | None = None,
        source_group_id: str | None = None,
        ssh: bool = False,
    ) -> str:
        """The id of our security group, letting the master reach the slaves.

        One group per balancer id (named like the launch template, tagged at
        creation) in ``vpc_id`` (None: the default VPC). Ingress: TCP on each
        port, and 22 when ``ssh``, from ``source_cidr`` (a bare address means
        /32) and/or ``source_group_id``. Rules are converged: missing ones are
        added, ones no longer wanted are revoked. Remembers the last result.
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
        key = (vpc_id, tuple(wanted_ports), tuple(sources))
        if self._group is not None and self._group[0] == key:
            return self._group[1]

        group = self._find_group(vpc_id)
        if group is None:
            group = self._create_group(vpc_id)
        group_id = group["GroupId"]
        wanted = {("tcp", p, p, kind, value) for p in wanted_ports for kind, value in sources}
        present = _permissions(group.get("IpPermissions") or ())
        missing = sorted(wanted - present)
        extra = sorted(present - wanted)
        if missing:
            try:
                with _api(f"authorize ingress to security group {group_id}"):
                    self.client.authorize_security_group_ingress(
                        GroupId=group_id, IpPermissions=_ip_permissions(missing)
                    )
            except EC2Error as exc:
                if _code(exc) != "InvalidPermission.Duplicate":
                    raise
        if extra:
            try:
                with _api(f"revoke ingress from security group {group_id}"):
                    self.client.revoke_security_group_ingress(GroupId=group_id, IpPermissions=_ip_permissions(extra))
            except EC2Error as exc:
                if _code(exc) != "InvalidPermission.NotFound":
                    raise
        self._group = (key, group_id)
        return group_id

    def _find_groups(self, vpc_id: str | None = None) -> list[dict[str, t.Any]]:
        filters = [self._tag_filter(), {"Name": "group-name", "Values": [self.name]}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        with _api("describe security groups"):
            found = self.client.describe_security_groups(Filters=filters)["SecurityGroups"]
        return [g for g in found if _tags(g.get("Tags")).get(BALANCER_TAG) == self.balancer_id]

    def _find_group(self, vpc_id: str | None) -> dict[str, t.Any] | None:
        groups = self._find_groups(vpc_id)
        return groups[0] if groups else None

    def _create_group(self, vpc_id: str | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {
            "GroupName": self.name,
            "Description": f"GBrowse render slaves of balancer {self.balancer_id}",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": self._our_tags()}],
        }
        if vpc_id:
            params["VpcId"] = vpc_id
        try:
            with _api(f"create security group {self.name}"):
                group_id = self.client.create_security_group(**params)["GroupId"]
        except EC2Error as exc:
            if _code(exc) != "InvalidGroup.Duplicate":
                raise
            group = self._find_group(vpc_id)
            if group is None:
                raise EC2Error(
                    f"A security group named {self.name} exists but does not carry {BALANCER_TAG}={self.balancer_id}",
                    code=exc.code,
                ) from exc
            return group
        return {"GroupId": group_id, "IpPermissions": []}

    def delete_security_group(self) -> bool:
        """Delete our security group(s). False (not an error) while instances still use one."""
        self._group = None
        gone = True
        for group in self._find_groups():
            try:
                with _api(f"delete security group {group['GroupId']}"):
                    self.client.delete_security_group(GroupId=group["GroupId"])
            except EC2Error as exc:
                if _code(exc) == "DependencyViolation":
                    gone = False
                elif _code(exc) not in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
                    raise
        return gone


def _code_of(error: t.Mapping[str, t.Any]) -> str:
    return str(error.get("ErrorCode") or "")


def _launched(answer: t.Mapping[str, t.Any]) -> bool:
    return any(group.get("InstanceIds") for group in answer.get("Instances") or ())


def _price(bid: float) -> str:
    return f"{bid:.6f}".rstrip("0").rstrip(".")


def _instance(raw: t.Mapping[str, t.Any]) -> Instance:
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
        tags=_tags(raw.get("Tags")),
        availability_zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        image_id=raw.get("ImageId"),
        state_reason=(raw.get("StateReason") or {}).get("Code") or None,
    )


def _image(raw: t.Mapping[str, t.Any]) -> Image:
    return Image(
        id=raw["ImageId"],
        name=raw.get("Name"),
        root_device_name=raw.get("RootDeviceName") or "/dev/xvda",
        block_device_mappings=tuple(dict(m) for m in raw.get("BlockDeviceMappings") or ()),
        creation_date=raw.get("CreationDate"),
    )


def _comparable(data: t.Mapping[str, t.Any]) -> t.Any:
    """Launch template data as compared: only the tag specifications we write count."""
    data = dict(data)
    specs = [s for s in data.get("TagSpecifications") or () if s.get("ResourceType") in ("instance", "volume")]
    data["TagSpecifications"] = specs
    return _canonical(data)


def _permissions(raw: t.Iterable[t.Mapping[str, t.Any]]) -> set[tuple[str, int, int, str, str]]:
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


def _ip_permissions(rules: t.Iterable[tuple[str, int, int, str, str]]) -> list[dict[str, t.Any]]:
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
