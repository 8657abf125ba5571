# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EC2 instances that are real hosts: test hosts booted at the private IP moto assigns.

A sync playbook launches a staging instance in moto and then logs in to it
over ssh at its private IP. This module makes that IP a real host:

- :class:`StagingSubnet`: a /24 inside 10.200.0.0/16 for moto's subnet, with
  a bridge on this machine holding its ``.1``. This machine (the GBrowse
  master in the tests) is on the subnet, as a master on EC2 is on the slaves'
  subnet, so "the address this host reaches the subnet from" is the bridge's.
- :class:`StagingHosts`: told by tests/support/volumes.py's proxy of every
  RunInstances, it boots a test host (tests/support/testhost.py: network
  namespace + ``systemd-nspawn --boot``) for each instance in the subnet, moves
  its veth onto the bridge and gives it the instance's private IP. Then it
  does what cloud-init does on a Debian AMI: creates the ``admin`` user with
  passwordless sudo, installs the EC2 key pair's public key (as imported into
  moto) in its ``authorized_keys`` and runs the instance's user data. Block
  devices of attached volumes appear in the host when the proxy asks; a
  terminated instance's host is shut down.

Network safety: the blackhole route for 10.200.0.0/16 is in place before the
bridge exists, the /24 is a slot claimed through testhost's host-wide
registry (so no other test host shares it), and everything is removed on
``close()``, also after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import shlex
import threading
import time
import typing as t
from pathlib import Path

from ansible_collections.gmod.gbrowse_aws.tests.support import testhost
from ansible_collections.gmod.gbrowse_aws.tests.support.testhost import TestHost, TestHostError
from ansible_collections.gmod.gbrowse_aws.tests.support.volumes import LaunchedInstance

ADMIN = "admin"  # the login of Debian's AMIs


class StagingSubnet:
    """A claimed 10.200.N.0/24 with a bridge holding 10.200.N.1 on this machine. Context manager."""

    _made = itertools.count(1)

    def __init__(self) -> None:
        self.owner = f"gbaws-subnet-{os.getpid()}-{next(self._made)}"
        self.index: int | None = None
        self.bridge = ""

    @property
    def cidr(self) -> str:
        return f"{testhost.NET}.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        """This machine's address on the subnet."""
        return f"{testhost.NET}.{self.index}.1"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    def up(self) -> StagingSubnet:
        if os.geteuid() != 0:
            raise TestHostError("a staging subnet needs root (a bridge and routes)")
        with testhost._locked(testhost.RUN / ".net.lock"):
            testhost._ensure_blackhole()
            # The claim's owner must be a namespace that exists, or the slot counts as stale.
            testhost._run(["ip", "netns", "add", self.owner])
            self.index = testhost._claim_slot(self.owner)
        self.bridge = f"gbsub{self.index}"
        testhost._run(["ip", "link", "del", self.bridge], check=False, quiet=True)  # a killed run's
        testhost._run(["ip", "link", "add", self.bridge, "type", "bridge"])
        testhost._run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        testhost._run(["ip", "link", "set", self.bridge, "up"])
        return self

    def down(self) -> None:
        if self.bridge:
            testhost._run(["ip", "link", "del", self.bridge], check=False, quiet=True)
        with testhost._locked(testhost.RUN / ".net.lock"):
            if self.index is not None:
                testhost._release_slot(self.index, self.owner)
            if Path("/run/netns", self.owner).exists():
                testhost._run(["ip", "netns", "del", self.owner], check=False)
            testhost._maybe_remove_blackhole()
        self.bridge = ""
        self.index = None

    def __enter__(self) -> StagingSubnet:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()


class StagingHost(TestHost):
    """A test host answering at an instance's private IP on a :class:`StagingSubnet`."""

    def __init__(self, instance_id: str, private_ip: str, subnet: StagingSubnet, state_dir: Path) -> None:
        super().__init__("stg-" + instance_id.removeprefix("i-")[:30].lower(), state_dir)
        self.instance_id = instance_id
        self.private_ip = private_ip
        self.subnet = subnet

    @property
    def address(self) -> str:
        return self.private_ip

    def start(self) -> None:
        super().start()
        # Move the host onto the subnet: its veth becomes a port of the bridge.
        testhost._run(["ip", "addr", "flush", "dev", self.veth])
        testhost._run(["ip", "link", "set", self.veth, "master", self.subnet.bridge])
        testhost._run(["ip", "-n", self.netns, "addr", "add", f"{self.private_ip}/24", "dev", "eth0"])

    def add_node(self, path: str, major: int, minor: int) -> None:
        """A block device node, under the attachment's name and (a loop device) the kernel's own, as blkid finds it."""
        nodes = [path] + ([f"/dev/loop{minor}"] if major == 7 and path != f"/dev/loop{minor}" else [])
        self.run(" && ".join(f"mknod -m 0660 {shlex.quote(node)} b {major} {minor} && chgrp disk {shlex.quote(node)}" for node in nodes))

    def remove_node(self, path: str) -> None:
        self.run(f"rm -f {shlex.quote(path)}", check=False)

    def install(self, files: t.Mapping[str, tuple[str, int]]) -> None:
        """Put files in place (path -> (content, mode)): what the image would have shipped."""
        for path, (content, mode) in files.items():
            self.run(f"mkdir -p {shlex.quote(os.path.dirname(path))} && cat > {shlex.quote(path)} && chmod {mode:o} {shlex.quote(path)}", input=content)

    def cloud_init(self, instance: LaunchedInstance) -> None:
        """What cloud-init does on first boot of a Debian AMI: the admin user, its key, the user data."""
        script = f"""
set -e
id {ADMIN} >/dev/null 2>&1 || useradd -m -s /bin/bash {ADMIN}
usermod -p '*' {ADMIN}
echo '{ADMIN} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
install -d -m 0700 -o {ADMIN} -g {ADMIN} /home/{ADMIN}/.ssh
printf '%s\\n' {shlex.quote(instance.public_key or '')} > /home/{ADMIN}/.ssh/authorized_keys
chown {ADMIN}: /home/{ADMIN}/.ssh/authorized_keys
chmod 0600 /home/{ADMIN}/.ssh/authorized_keys
mkdir -p /var/lib/cloud/instance
cat > /var/lib/cloud/instance/user-data.txt
case $(head -c 2 /var/lib/cloud/instance/user-data.txt) in
    '#!')
        chmod 0700 /var/lib/cloud/instance/user-data.txt
        # As cloud-init: the script's output logged, its failure noted, the boot going on.
        /var/lib/cloud/instance/user-data.txt >> /var/log/cloud-init-output.log 2>&1 \
            || echo "user data exited $?" >> /var/log/cloud-init-output.log
        ;;
esac
"""
        self.run(script, input=instance.user_data)


class StagingHosts:
    """The hosts of the instances launched in ``subnet``; see the module doc. Implements volumes.InstanceHosts."""

    def __init__(self, subnet: StagingSubnet, state_dir: str | os.PathLike[str], boot_timeout: float = 90.0) -> None:
        self.subnet = subnet
        self.state_dir = Path(state_dir)
        self.boot_timeout = boot_timeout
        #: files every host gets before its user data runs, as if the AMI shipped them (path -> (content, mode))
        self.image_files: dict[str, tuple[str, int]] = {}
        #: False: launched instances get no host, as an instance that never comes up (unreachable)
        self.boot = True
        self.hosts: dict[str, StagingHost] = {}
        self.errors: list[str] = []
        #: instance id -> seconds from RunInstances to the host accepting the admin's key
        self.boot_seconds: dict[str, float] = {}
        self._ready: dict[str, threading.Event] = {}
        #: set when the instance is terminated: a host still booting is shut down by its boot thread
        self._cancelled: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- volumes.InstanceHosts ---------------------------------------------

    def launched(self, instance: LaunchedInstance) -> None:
        if not instance.private_ip or ipaddress.ip_address(instance.private_ip) not in self.subnet.network:
            return  # not in our subnet: nothing may ever connect to it
        if not self.boot:
            return
        host = StagingHost(instance.instance_id, instance.private_ip, self.subnet, self.state_dir)
        ready, cancelled = threading.Event(), threading.Event()
        thread = threading.Thread(target=self._boot, args=(host, instance, ready, cancelled), name=f"boot {instance.instance_id}", daemon=True)
        with self._lock:
            self.hosts[instance.instance_id] = host
            self._ready[instance.instance_id] = ready
            self._cancelled[instance.instance_id] = cancelled
            self._threads[instance.instance_id] = thread
        thread.start()

    def _boot(self, host: StagingHost, instance: LaunchedInstance, ready: threading.Event, cancelled: threading.Event) -> None:
        start = time.monotonic()
        try:
            host.start()
            if not cancelled.is_set():
                host.wait(self.boot_timeout)
            if not cancelled.is_set():
                for node, major, minor in instance.devices:  # volumes of its block device mappings: there at boot
                    host.add_node(node, major, minor)
                if self.image_files:
                    host.install(self.image_files)
                host.cloud_init(instance)
                self.boot_seconds[instance.instance_id] = round(time.monotonic() - start, 2)
        except Exception as exc:
            if not cancelled.is_set():
                self.errors.append(f"{instance.instance_id}: {exc}")
        finally:
            ready.set()
            if cancelled.is_set():  # terminated while it booted: no host may outlive its instance
                host.down()

    def terminated(self, instance_id: str) -> None:
        with self._lock:
            host = self.hosts.pop(instance_id, None)
            thread = self._threads.pop(instance_id, None)
            cancelled = self._cancelled.pop(instance_id, None)
            self._ready.pop(instance_id, None)
        if cancelled is not None:
            cancelled.set()
        if thread is not None:
            thread.join(self.boot_timeout + 30)
            if thread.is_alive():
                return  # still booting: its thread shuts it down (never two hands on one host)
        if host is not None:
            host.down()

    def add_device(self, instance_id: str, path: str, major: int, minor: int) -> bool:
        with self._lock:
            host = self.hosts.get(instance_id)
            ready = self._ready.get(instance_id)
        if host is None or ready is None:
            return False
        if not ready.wait(self.boot_timeout + 30) or not host.info:
            return False
        host.add_node(path, major, minor)
        return True

    def remove_device(self, instance_id: str, path: str) -> None:
        with self._lock:
            host = self.hosts.get(instance_id)
        if host is not None and host.info:
            host.remove_node(path)

    # -- life cycle ---------------------------------------------------------

    def host(self, instance_id: str) -> StagingHost:
        return self.hosts[instance_id]

    def running(self) -> list[str]:
        with self._lock:
            return list(self.hosts)

    def close(self) -> None:
        """Shut every host down (also the ones a failed test left)."""
        with self._lock:
            ids = list(self.hosts)
        for instance_id in ids:
            with contextlib.suppress(Exception):
                self.terminated(instance_id)
        testhost.down_all(self.state_dir)

    def __enter__(self) -> StagingHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def can_host() -> str | None:
    """Why this machine cannot run staging hosts, or None when it can."""
    import shutil

    if os.geteuid() != 0:
        return "not root (network namespaces, loop devices and systemd-nspawn need root)"
    for tool in ("systemd-nspawn", "ip", "losetup", "rsync", "ssh", "unshare"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not shutil.which("debootstrap") and not any(testhost.cache_dir().glob("rootfs-*.tar.zst")):
        return "debootstrap is not installed and no cached test-host root filesystem exists"
    return None


__all__ = ["ADMIN", "StagingHost", "StagingHosts", "StagingSubnet", "can_host"]


# ---------------------------------------------------------------------------
# Everything a sync needs, on this machine


REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
VENV_BIN = REPO / ".venv" / "bin"
BALANCER_ID = "synctest"
LOAD_TABLE = "[LOAD TABLE]\n0.1   0 1\n1     1 3\n"


class PlaybookRun(t.NamedTuple):
    """One ansible-playbook (or gbrowse_sync_aws_slave) run."""

    returncode: int
    output: str
    result: dict[str, t.Any]  # the playbook's JSON summary (empty if it wrote none)
    seconds: float


class SyncLab:
    """moto, the EBS backing proxy, a staging subnet and hosts, a conf: a sync's whole world. Context manager.

    ::

        with SyncLab(tmp) as lab:
            run = lab.sync(databases="/data/db")        # ansible-playbook playbooks/sync.yml
            lab.leftovers()                             # what the syncs left in moto (should be {})
            lab.ebs.snapshot_image(run.result["data_snapshots"][0])
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        balancer_id: str = BALANCER_ID,
        image_name: str | None = "gbrowse-slave",
        region: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.balancer_id = balancer_id
        self.image_name = image_name
        self.region = region
        self.conf = self.workdir / "aws_balancer.conf"
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SyncLab:
        from ansible_collections.gmod.gbrowse_aws.tests.support.moto import MotoServer, slave_image
        from ansible_collections.gmod.gbrowse_aws.tests.support.volumes import EBSBacking

        try:
            # The test hosts' rootfs before anything is launched: a staging instance then boots
            # in seconds whatever the cache held, never while a playbook already waits for it.
            testhost.ensure_rootfs()
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / "lock").mkdir(exist_ok=True)
            # A moto process of its own: a threaded moto shares its state with every other
            # threaded moto of this process (other tests' instances would count as leftovers).
            self.moto = self._stack.enter_context(MotoServer(mode="process", **({"region": self.region} if self.region else {})))
            self.subnet = self._stack.enter_context(StagingSubnet())
            self.hosts = self._stack.enter_context(StagingHosts(self.subnet, self.workdir / "hosts"))
            self.ebs = self._stack.enter_context(EBSBacking(self.moto.url, self.workdir / "ebs", hosts=self.hosts))
            self.ec2 = self.moto.client()
            vpc = self.ec2.create_vpc(CidrBlock=f"{testhost.NET}.0.0/16")["Vpc"]["VpcId"]
            self.subnet_id = self.ec2.create_subnet(VpcId=vpc, CidrBlock=self.subnet.cidr)["Subnet"]["SubnetId"]
            self.image_id = slave_image(self.ec2, self.image_name)
            # moto comes with thousands of snapshots (its AMIs'): not ours to count.
            self.stock_snapshots = {s["SnapshotId"] for s in self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
            self.write_conf()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        record = os.environ.get("GBROWSE_AWS_RECORD_ACTIONS")
        if record and hasattr(self, "ebs"):  # for the IAM policy in docs/sync.md
            with open(record, "a", encoding="utf-8") as handle:
                handle.writelines(f"{action}\n" for action in sorted(set(self.ebs.calls)))
        self._stack.close()

    def write_conf(self, **slave: str) -> str:
        """A conf for the lab: its image (by name when registered so), subnet and balancer id."""
        settings = {
            "instance_type": "t3.micro",
            "region": self.moto.region,
            "image_id": self.image_name or self.image_id,
            "subnet": self.subnet_id,
            "data_snapshots": "",
        }
        settings.update(slave)
        lines = [LOAD_TABLE, "[MASTER]", f"balancer_id = {self.balancer_id}", "poll_interval = 0.5", "", "[SLAVE]"]
        lines += [f"{key} = {value}" if value else f"{key} =" for key, value in settings.items()]
        self.conf.write_text("\n".join(lines) + "\n")
        return self.conf.read_text()

    def env(self) -> dict[str, str]:
        env = self.moto.environ()
        env.update(
            AWS_ENDPOINT_URL=self.ebs.url,
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PIPELINING="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        return env

    def settings(self, **extra: t.Any) -> dict[str, t.Any]:
        values: dict[str, t.Any] = {
            "gbrowse_sync_conf": str(self.conf),
            "gbrowse_sync_lock_dir": str(self.workdir / "lock"),
            "gbrowse_sync_result_file": str(self.workdir / "result.json"),
            "gbrowse_sync_ssh_timeout": 120,
            "gbrowse_sync_snapshot_poll": 1,
            "gbrowse_sync_headroom_mib": 256,
        }
        values.update(extra)
        return values

    def sync(self, *, playbook: str = "sync.yml", check: bool = False, timeout: float = 600, **extra: t.Any) -> PlaybookRun:
        """ansible-playbook PLAYBOOK with the lab's settings plus ``extra`` (gbrowse_sync_* without the prefix)."""
        import json

        values = self.settings(**{f"gbrowse_sync_{k}": v for k, v in extra.items()})
        varfile = self.workdir / "vars.json"
        varfile.write_text(json.dumps(values))
        cmd = [str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / playbook), "-e", f"@{varfile}"]
        if check:
            cmd.append("--check")
        return self.run(cmd, timeout=timeout)

    def run(self, cmd: t.Sequence[str], *, timeout: float = 600, env: t.Mapping[str, str] | None = None) -> PlaybookRun:
        import json
        import subprocess

        result_file = self.workdir / "result.json"
        result_file.unlink(missing_ok=True)
        start = time.monotonic()
        proc = subprocess.run(
            list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            env=dict(env or self.env()), cwd=self.workdir, check=False,
        )  # fmt: skip
        seconds = round(time.monotonic() - start, 2)
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, result, seconds)

    def recorded_snapshots(self) -> list[str]:
        """The syncs' snapshots tagged as recorded in a conf (the lineage's history)."""
        found = self.ec2.describe_snapshots(Filters=[{"Name": "tag:gbrowse-aws:state", "Values": ["recorded"]}])["Snapshots"]
        return [s["SnapshotId"] for s in found]

    def leftovers(self, referenced: t.Iterable[str] = ()) -> dict[str, list[str]]:
        """What is in moto besides the lab's own set-up, the snapshots in ``referenced`` and recorded ones."""
        ec2 = self.ec2
        instances = [
            i["InstanceId"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]
        found = {
            "instances": instances,
            "volumes": [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]],
            "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]],
            "security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"],
            # Recorded snapshots are the lineage's history, kept on purpose (gbrowse_sync_keep_snapshots).
            "snapshots": [
                s["SnapshotId"]
                for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                if s["SnapshotId"] not in set(referenced) | self.stock_snapshots
                and {"Key": "gbrowse-aws:state", "Value": "recorded"} not in s.get("Tags", [])
            ],
            "staging_hosts": self.hosts.running(),
            "loop_devices": [v for v, vol in self.ebs.volumes.items() if vol.loop],
        }
        return {kind: ids for kind, ids in found.items() if ids}


# ---------------------------------------------------------------------------
# Data on the master


def set_acl(path: str | os.PathLike[str], uid: int, perm: int = 4) -> None:
    """Give user ``uid`` ``perm`` (4 = r) through a POSIX ACL, without setfacl (written as the kernel's xattr)."""
    import struct

    mode = os.stat(path).st_mode
    entries = [
        (0x01, (mode >> 6) & 7, 0xFFFFFFFF),  # user::
        (0x02, perm, uid),  # user:UID:
        (0x04, (mode >> 3) & 7, 0xFFFFFFFF),  # group::
        (0x10, perm | ((mode >> 3) & 7), 0xFFFFFFFF),  # mask::
        (0x20, mode & 7, 0xFFFFFFFF),  # other::
    ]
    data = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    os.setxattr(path, "system.posix_acl_access", data)


def make_tree(root: str | os.PathLike[str], files: int, size: int, *, seed: int = 1) -> int:
    """``files`` files of random data, about ``size`` bytes each, in a few subdirectories; returns the bytes.

    Also what rsync must keep: a hard link, a symlink, an empty directory,
    odd names, a file owned by www-data, an extended attribute and an ACL.
    """
    import random

    rng = random.Random(seed)
    root = Path(root)
    total = 0
    for n in range(files):
        sub = root / f"source{n % 7}" / f"track{n % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        length = max(1, int(size * (0.5 + rng.random())))
        (sub / f"feature-{n:05d}.bin").write_bytes(rng.randbytes(length))
        total += length
    special = root / "special"
    special.mkdir(exist_ok=True)
    (special / "name with spaces & ünïcode.gff3").write_text("##gff-version 3\n")
    os.link(root / "source0" / "track0" / "feature-00000.bin", special / "hardlink.bin")
    os.symlink("../source1/track1/feature-00001.bin", special / "symlink.bin")
    (special / "empty-dir").mkdir(exist_ok=True)
    owned = special / "owned-by-www-data.conf"
    owned.write_text("owner\n")
    os.chown(owned, 33, 33)
    os.chmod(owned, 0o640)
    os.setxattr(special / "name with spaces & ünïcode.gff3", "user.gbrowse.source", b"yeast")
    set_acl(owned, 33)
    return total


def change_files(root: str | os.PathLike[str], fraction: float, *, seed: int = 2) -> tuple[int, int]:
    """Rewrite ``fraction`` of the data files with new random data (same sizes); returns (files, bytes) changed."""
    import random

    rng = random.Random(seed)
    candidates = sorted(Path(root).glob("source*/track*/feature-*.bin"))
    chosen = rng.sample(candidates, max(1, round(len(candidates) * fraction)))
    changed = 0
    for path in chosen:
        length = path.stat().st_size
        path.write_bytes(rng.randbytes(length))
        changed += length
    return len(chosen), changed
