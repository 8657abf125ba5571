# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fake AWS on loopback: a moto server for EC2, and a fake IMDSv2 endpoint.

Used by the system tests, the demo and the benchmarks::

    with MotoServer() as moto:                  # http://127.0.0.1:<free port>
        ec2 = moto.client()                     # boto3 EC2 client, dummy keys, us-west-2
        net = make_network(ec2)                 # VPC 127.100.0.0/16, subnet 127.100.1.0/24
        ami = slave_image(ec2)                  # a launchable AMI id
        subprocess.run(cmd, env=moto.environ()) # a child process talking to moto only
        moto.reset()                            # empty every backend (POST /moto-api/reset)

    with FakeInstanceMetadata(instance_id="i-0123", private_ip="127.100.1.9") as imds:
        env = imds.env()                        # AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:<port>/

Network safety: every server here binds 127.0.0.1 and refuses any other
address; instances launched into :func:`make_network`'s subnet get private IPs
in 127.100.1.0/24, so anything that connects to a slave stays on this machine.
The environments built here set ``AWS_EC2_METADATA_DISABLED=true`` (unless a
fake metadata endpoint is asked for) and dummy credentials, and point shared
config/credential files at an empty file so no real profile is ever read.

Modes: ``MotoServer()`` runs ``moto.server.ThreadedMotoServer`` inside this
process (fast to start, shares the GIL with the test); ``MotoServer(mode=
"process")`` runs ``python -m moto.server`` as a child process, stopped by its
PID. Both are stopped on context exit, also on failure.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import urllib.request
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import LoopbackServer, QuietHandler

REGION = "us-west-2"
ACCESS_KEY = "AKIAMOTODUMMYACCESSKEY"
SECRET_KEY = "moto-dummy-secret-key-that-is-long-enough-not-to-be-masked"
#: moto's stock Amazon Linux 2 image: present in every region of the default AMI list.
STOCK_AMI = "ami-04681a1dbd79675a5"
VPC_CIDR = "127.100.0.0/16"
SUBNET_CIDR = "127.100.1.0/24"

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def require_loopback(host: str) -> str:
    """Return ``host`` if it is an IPv4 loopback address; raise otherwise."""
    if ipaddress.ip_address(host) not in _LOOPBACK:
        raise ValueError(f"{host} is not in 127.0.0.0/8: tests stay on loopback")
    return host


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for servers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((require_loopback(host), 0))
        return sock.getsockname()[1]


def _empty_file() -> str:
    path = os.path.join(tempfile.gettempdir(), "gbrowse_aws-empty-aws-config")
    if not os.path.exists(path):
        with open(path, "w", encoding="ascii"):
            pass
    return path


def aws_env(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """Variables that point any AWS SDK/CLI at ``endpoint_url`` with dummy keys."""
    empty = _empty_file()
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": empty,
        "AWS_SHARED_CREDENTIALS_FILE": empty,
    }


def environ_with(extra: t.Mapping[str, str], base: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """A full environment: ``base`` (default os.environ) without any AWS_*/EC2_* variable, plus ``extra``."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "EC2_"))}
    env.update(extra)
    return env


def boto3_client(url: str, service: str = "ec2", region: str = REGION, **config: t.Any) -> t.Any:
    """A boto3 client for ``service`` at ``url`` with the dummy keys (never any real credential)."""
    retries = config.pop("retries", {"mode": "standard", "max_attempts": 3})
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=region,
    ).client(service, endpoint_url=url, config=Config(retries=retries, **config))


class MotoServer:
    """A moto server on 127.0.0.1 and a free port. Context manager; see the module doc."""

    def __init__(
        self,
        mode: str = "thread",
        host: str = "127.0.0.1",
        region: str = REGION,
        env: t.Mapping[str, str] | None = None,
        # A readiness wait, not a time limit: several moto processes starting at once
        # on a busy 2-core machine take far longer than the usual 3 s to import.
        startup_timeout: float = 60.0,
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', not {mode!r}")
        self.mode = mode
        self.host = require_loopback(host)
        self.region = region
        self.port = 0
        self._extra_env = dict(env or {})
        self._startup_timeout = startup_timeout
        self._threaded: t.Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: t.IO[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("moto server not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        if self.mode == "thread":
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines on stderr
            self._threaded = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._threaded.start()
            self.port = self._threaded.get_host_and_port()[1]
        else:
            self.port = free_port(self.host)
            self._log = tempfile.TemporaryFile()
            env = environ_with(aws_env(f"http://{self.host}:{self.port}", self.region))
            env.update(self._extra_env)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}: {self.log_tail()}")
            try:
                with _NO_PROXY.open(self.url + "/moto-api/data.json", timeout=1) as answer:
                    answer.read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer within {self._startup_timeout}s")

    def log_tail(self, size: int = 4000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-size:]

    def stop(self) -> None:
        if self._threaded is not None:
            self._threaded.stop()
            self._threaded = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource in every backend."""
        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with _NO_PROXY.open(request, timeout=30) as answer:
            answer.read()

    def env(self) -> dict[str, str]:
        """The variables a child process needs to use this server (and nothing else)."""
        return aws_env(self.url, self.region)

    def environ(self, base: t.Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment for a child process: ``base`` minus AWS_*/EC2_* plus :meth:`env`."""
        return environ_with(self.env(), base)

    def client(self, service: str = "ec2", **config: t.Any) -> t.Any:
        return boto3_client(self.url, service, self.region, **config)


@dataclass(frozen=True)
class Network:
    """The slaves' network in moto: all of it inside 127.0.0.0/8."""

    vpc_id: str
    subnet_id: str
    availability_zone: str
    cidr: str


def make_network(client: t.Any, vpc_cidr: str = VPC_CIDR, subnet_cidr: str = SUBNET_CIDR) -> Network:
    """Create a VPC and subnet inside 127.0.0.0/8, so instances get loopback private IPs."""
    for cidr in (vpc_cidr, subnet_cidr):
        if not ipaddress.ip_network(cidr).subnet_of(_LOOPBACK):  # type: ignore[arg-type]
            raise ValueError(f"{cidr} is not inside 127.0.0.0/8")
    vpcs = client.describe_vpcs(Filters=[{"Name": "cidr", "Values": [vpc_cidr]}])["Vpcs"]
    vpc_id = vpcs[0]["VpcId"] if vpcs else client.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
    subnets = client.describe_subnets(Filters=[{"Name": "cidr-block", "Values": [subnet_cidr]}])["Subnets"]
    subnet = subnets[0] if subnets else client.create_subnet(VpcId=vpc_id, CidrBlock=subnet_cidr)["Subnet"]
    return Network(vpc_id, subnet["SubnetId"], subnet["AvailabilityZone"], subnet_cidr)


def slave_image(client: t.Any, name: str | None = None) -> str:
    """A launchable AMI id: moto's stock one, or a new image of this account named ``name``.

    Registered images get moto's default root device (/dev/sda1, 15 GiB);
    their CreationDate has a one-second resolution, so register "newer"
    images at least a second apart.
    """
    if name is None:
        client.describe_images(ImageIds=[STOCK_AMI])  # raises if moto's AMI list changed
        return STOCK_AMI
    return client.register_image(Name=name, Description=f"{name} (test image)", RootDeviceName="/dev/sda1")["ImageId"]


def make_snapshots(client: t.Any, availability_zone: str, count: int, size: int = 1) -> list[str]:
    """``count`` snapshots of fresh volumes (for data_snapshots)."""
    ids = []
    for i in range(count):
        volume = client.create_volume(Size=size, AvailabilityZone=availability_zone)["VolumeId"]
        ids.append(client.create_snapshot(VolumeId=volume, Description=f"gbrowse data {i}")["SnapshotId"])
        client.delete_volume(VolumeId=volume)
    return ids


def run_foreign_instances(
    client: t.Any,
    subnet_id: str | None,
    count: int = 1,
    tags: t.Mapping[str, str] | None = None,
    image_id: str = STOCK_AMI,
) -> list[str]:
    """Instances launched behind the balancer's back (untagged, or tagged as given).

    ``subnet_id`` None puts them in moto's default VPC (172.31.0.0/16): not
    on loopback, so nothing may ever connect to them.
    """
    params: dict[str, t.Any] = {"ImageId": image_id, "MinCount": count, "MaxCount": count, "InstanceType": "t3.micro"}
    if subnet_id:
        params["SubnetId"] = subnet_id
    if tags:
        params["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return [i["InstanceId"] for i in client.run_instances(**params)["Instances"]]


# -- fake instance metadata (IMDSv2) -------------------------------------


@dataclass
class FakeInstanceMetadata(LoopbackServer):
    """An IMDSv2 endpoint on 127.0.0.1 that insists on a session token, as the real one does.

    ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds``
    gives a token; ``GET /latest/meta-data/...`` without a valid
    ``X-aws-ec2-metadata-token`` answers 401. ``requests`` records
    (method, path, had_valid_token) of every request. With ``role`` set it
    also serves instance-role credentials (the dummy keys), so the boto3
    credential chain can be tested end to end.
    """

    instance_id: str = "i-0123456789abcdef0"
    region: str = REGION
    availability_zone: str = REGION + "a"
    image_id: str = STOCK_AMI
    private_ip: str = "127.100.1.250"
    public_ip: str | None = None
    mac: str = "0e:00:00:00:00:01"
    subnet_id: str = "subnet-0123456789abcdef0"
    vpc_id: str = "vpc-0123456789abcdef0"
    security_group_ids: tuple[str, ...] = ("sg-0123456789abcdef0",)
    role: str | None = None
    hang: bool = False  # accept connections, never answer (a firewall-dropped metadata service)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._release = threading.Event()

    @classmethod
    def for_instance(cls, client: t.Any, instance_id: str, **overrides: t.Any) -> FakeInstanceMetadata:
        """Metadata describing a moto instance (the master "on EC2")."""
        raw = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        iface = (raw.get("NetworkInterfaces") or [{}])[0]
        values: dict[str, t.Any] = {
            "instance_id": instance_id,
            "availability_zone": raw["Placement"]["AvailabilityZone"],
            "region": raw["Placement"]["AvailabilityZone"][:-1],
            "image_id": raw["ImageId"],
            "private_ip": raw.get("PrivateIpAddress"),
            "public_ip": raw.get("PublicIpAddress"),
            "mac": iface.get("MacAddress") or "0e:00:00:00:00:01",
            "subnet_id": raw.get("SubnetId"),
            "vpc_id": raw.get("VpcId"),
            "security_group_ids": tuple(g["GroupId"] for g in raw.get("SecurityGroups") or ()),
        }
        values.update(overrides)
        return cls(**values)

    def paths(self) -> dict[str, str]:
        base = f"network/interfaces/macs/{self.mac}/"
        data = {
            "instance-id": self.instance_id,
            "placement/region": self.region,
            "placement/availability-zone": self.availability_zone,
            "ami-id": self.image_id,
            "local-ipv4": self.private_ip,
            "mac": self.mac,
            base + "subnet-id": self.subnet_id,
            base + "vpc-id": self.vpc_id,
            base + "security-group-ids": "\n".join(self.security_group_ids),
        }
        if self.public_ip:
            data["public-ipv4"] = self.public_ip
        if self.role:
            data["iam/security-credentials/"] = self.role
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=6)
            data[f"iam/security-credentials/{self.role}"] = json.dumps(
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": ACCESS_KEY,
                    "SecretAccessKey": SECRET_KEY,
                    "Token": "moto-dummy-session-token",
                    "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        return {k: v for k, v in data.items() if v is not None}

    thread_name = "fake metadata service"

    @property
    def url(self) -> str:
        return super().url + "/"

    def env(self) -> dict[str, str]:
        return {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.url, "AWS_EC2_METADATA_DISABLED": "false"}

    def make_handler(self) -> type[QuietHandler]:
        fake = self

        class Handler(QuietHandler):
            def _answer(self, status: int, body: str = "") -> None:
                self.reply(status, [("Content-Type", "text/plain")], body.encode("utf-8"))

            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                self.read_body()
                fake.requests.append(("PUT", self.path, False))
                if fake.hang:
                    fake._release.wait()
                    return
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                if self.path != "/latest/api/token" or not ttl or not ttl.isdigit():
                    self._answer(400, "Missing or invalid TTL")
                    return
                token = secrets.token_urlsafe(24)
                fake._tokens.add(token)
                self._answer(200, token)

            def do_GET(self) -> None:  # noqa: N802
                valid = self.headers.get("X-aws-ec2-metadata-token") in fake._tokens
                fake.requests.append(("GET", self.path, valid))
                if fake.hang:
                    fake._release.wait()
                    return
                if not valid:
                    self._answer(401)
                    return
                prefix = "/latest/meta-data/"
                value = fake.paths().get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
                if value is None:
                    self._answer(404, "Not Found")
                else:
                    self._answer(200, value)

        return Handler

    def stop(self) -> None:
        self._release.set()
        super().stop()
