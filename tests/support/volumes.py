# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EBS volumes and snapshots that hold real data: moto's, backed by ext4 images.

moto keeps only the metadata of volumes and snapshots. :class:`EBSBacking`
is an HTTP proxy in front of moto (itself on 127.0.0.1) that gives each of
them a sparse image file and keeps the images in step with what the EC2 API
calls do, so a playbook that writes to a volume, snapshots it and later makes
a new volume from the snapshot really finds its data again::

    with MotoServer() as moto, EBSBacking(moto.url, workdir, hosts=stagings) as ebs:
        env = moto.environ() | {"AWS_ENDPOINT_URL": ebs.url}   # clients talk to the proxy
        ...
        ebs.snapshot_image("snap-0123")          # the snapshot's ext4 image
        ebs.deny("CreateSnapshot")               # the next CreateSnapshot fails (403)
        ebs.deny("DescribeSnapshots", after="CreateSnapshot")   # ... the next one after a CreateSnapshot
        ebs.calls                                # actions forwarded, in order

What each call does to the images, after moto answered it successfully:

- ``CreateVolume``: a new sparse image of the volume's size; from a snapshot,
  a copy of the snapshot's image, grown to the volume's size. So do the
  volumes that ``RunInstances`` makes from snapshots in its block device
  mappings (as the balancer launches slaves); their devices are in the host
  when it boots.
- ``AttachVolume``: a loop device on the image, and (through ``hosts``) the
  matching block device node inside the instance's test host, named as a Xen
  instance names it (``/dev/sdf`` appears as ``/dev/xvdf``).
- ``ModifyVolume``: the image grows, the loop device is told (``losetup -c``).
- ``CreateSnapshot``: a copy of the volume's image, taken before the answer
  is returned, so the snapshot is of the data at the time of the call.
- ``DetachVolume``, ``DeleteVolume``, ``DeleteSnapshot``, ``TerminateInstances``
  (volumes deleted on termination): the device node, loop device and images go.
- ``RunInstances`` / ``ImportKeyPair``: ``hosts`` is told of the instance with
  its private IP, key pair public key and user data (see tests/support/staging.py).

One answer is mended on the way back: moto leaves out the ``snapshotId`` of
a volume made without a snapshot, where EC2 returns an empty one (and
amazon.aws.ec2_vol_info fails on its absence).

:meth:`EBSBacking.deny` answers the next calls of an action with EC2's 403
``UnauthorizedOperation`` (an IAM policy missing an action) without
forwarding them: unlike throttling or 5xx errors, botocore and amazon.aws do
not retry it, so a failure can be injected at any step and fail it at once.
:func:`inspect_image` mounts an image read-only in a private mount namespace
and runs a shell command in it. Needs root (loop devices).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import typing as t
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import EC2Proxy

GIB = 1 << 30


@dataclass(frozen=True)
class LaunchedInstance:
    """An instance RunInstances made, as a cloud-init stand-in needs it."""

    instance_id: str
    private_ip: str
    key_name: str | None
    public_key: str | None
    user_data: str
    #: (node, major, minor) of the volumes its block device mappings made from snapshots: there at boot
    devices: tuple[tuple[str, int, int], ...] = ()


class InstanceHosts(t.Protocol):
    """Whatever stands for the instances (tests/support/staging.py)."""

    def launched(self, instance: LaunchedInstance) -> None: ...

    def terminated(self, instance_id: str) -> None: ...

    def add_device(self, instance_id: str, path: str, major: int, minor: int) -> bool: ...

    def remove_device(self, instance_id: str, path: str) -> None: ...


@dataclass
class _Volume:
    image: Path
    size_gib: int
    loop: str | None = None
    instance: str | None = None
    device: str | None = None  # the node inside the host


def _run(cmd: t.Sequence[str]) -> str:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def host_device_name(device: str) -> str:
    """The node a Xen instance shows for an attachment: /dev/sdf -> /dev/xvdf."""
    if device.startswith("/dev/sd"):
        return "/dev/xvd" + device[len("/dev/sd") :]
    return device


def _with_empty_snapshot_ids(data: bytes) -> bytes:
    """EC2 always returns a volume's SnapshotId ("" for a blank volume); moto leaves it out, which
    amazon.aws.ec2_vol_info cannot take. Put the empty element back."""
    root = ET.fromstring(data)
    changed = False
    for item in _items(root, "volumeSet"):
        if not any(_local(child.tag) == "snapshotId" for child in item):
            namespace = item.tag[: item.tag.index("}") + 1] if item.tag.startswith("{") else ""
            ET.SubElement(item, f"{namespace}snapshotId")
            changed = True
    if not changed:
        return data
    if root.tag.startswith("{"):
        ET.register_namespace("", root.tag[1 : root.tag.index("}")])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _listed(params: t.Mapping[str, str], name: str) -> list[str]:
    """The values of a query-API list parameter: Name.1, Name.2, ..."""
    values = []
    n = 1
    while f"{name}.{n}" in params:
        values.append(params[f"{name}.{n}"])
        n += 1
    return values


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(element: ET.Element, name: str) -> str | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child.text
    return None


def _items(element: ET.Element, container: str) -> list[ET.Element]:
    for child in element.iter():
        if _local(child.tag) == container:
            return [item for item in child if _local(item.tag) == "item"]
    return []


class EBSBacking(EC2Proxy):
    """See the module doc."""

    thread_name = "EBS backing proxy"

    def __init__(self, upstream_url: str, workdir: str | os.PathLike[str], hosts: InstanceHosts | None = None) -> None:
        super().__init__(upstream_url)
        self.workdir = Path(workdir)
        self.hosts = hosts
        self.volumes: dict[str, _Volume] = {}
        self.snapshots: dict[str, Path] = {}
        self.public_keys: dict[str, str] = {}
        #: EC2 actions forwarded to moto, in order.
        self.calls: list[str] = []
        #: actions answered with a denial, in order.
        self.denied: list[str] = []
        self.errors: list[str] = []  # problems in the hooks (the test checks it is empty)
        self._deny: dict[str, tuple[str | None, int]] = {}  # action -> (armed after this action, calls to deny)
        self._seen: set[str] = set()  # actions forwarded since the denials were set
        self._auth = ""
        self._lock = threading.RLock()

    # -- set-up -----------------------------------------------------------

    def start(self) -> EBSBacking:
        (self.workdir / "volumes").mkdir(parents=True, exist_ok=True)
        (self.workdir / "snapshots").mkdir(parents=True, exist_ok=True)
        return super().start()

    def refuse(self, action: str | None) -> tuple[int, str, str] | None:
        if action and self._take_denial(action):
            return 403, "UnauthorizedOperation", f"You are not authorized to perform this operation ({action}: denied by the test)."
        return None

    def answered(self, action: str | None, params: dict[str, str], status: int, data: bytes, headers: t.Any) -> bytes:
        if action == "DescribeVolumes" and status == 200:
            data = _with_empty_snapshot_ids(data)
        if action and status == 200:
            with self._lock:
                self.calls.append(action)
                self._seen.add(action)
                try:
                    self._after(action, params, data, headers.get("Authorization", ""))
                except Exception as exc:  # the test sees these in .errors
                    self.errors.append(f"{action}: {exc}")
        return data

    def stop(self) -> None:
        super().stop()
        self.release()

    def release(self) -> None:
        """Detach every loop device and forget every image (also after a failed test)."""
        with self._lock:
            for volume in self.volumes.values():
                self._unloop(volume)
            self.volumes.clear()
            self.snapshots.clear()
            for sub in ("volumes", "snapshots"):
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
                (self.workdir / sub).mkdir(parents=True, exist_ok=True)

    # -- faults -----------------------------------------------------------

    def deny(self, action: str, times: int = 1, after: str | None = None) -> None:
        """Answer the next ``times`` calls of ``action`` with 403 UnauthorizedOperation.

        With ``after``, only calls made once an ``after`` call went through
        (``deny("DescribeSnapshots", after="CreateSnapshot")``: the wait for a snapshot).
        """
        with self._lock:
            self._deny[action] = (after, times)
            self._seen.clear()

    def clear_denials(self) -> None:
        with self._lock:
            self._deny.clear()

    def _take_denial(self, action: str) -> bool:
        with self._lock:
            after, times = self._deny.get(action, (None, 0))
            if times <= 0 or (after is not None and after not in self._seen):
                return False
            self._deny[action] = (after, times - 1)
            self.denied.append(action)
            return True

    # -- the images -------------------------------------------------------

    def volume_image(self, volume_id: str) -> Path:
        return self.volumes[volume_id].image

    def snapshot_image(self, snapshot_id: str) -> Path:
        return self.snapshots[snapshot_id]

    def _after(self, action: str, params: dict[str, str], data: bytes, auth: str) -> None:
        hook = getattr(self, f"_on_{action}", None)
        if hook is not None:
            self._auth = auth  # under self._lock: for the hook's own calls to moto (same account, region)
            hook(params, ET.fromstring(data))

    def _on_ImportKeyPair(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        material = params.get("PublicKeyMaterial", "")
        with contextlib.suppress(ValueError):
            material = base64.b64decode(material, validate=True).decode("utf-8")
        self.public_keys[params["KeyName"]] = material.strip()

    def _on_CreateKeyPair(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        private = _find(answer, "keyMaterial") or ""
        with tempfile.NamedTemporaryFile("w", delete=False) as handle:
            handle.write(private)
        try:
            os.chmod(handle.name, 0o600)
            self.public_keys[params["KeyName"]] = _run(["ssh-keygen", "-y", "-f", handle.name])
        finally:
            os.unlink(handle.name)

    def _on_DeleteKeyPair(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        self.public_keys.pop(params.get("KeyName", ""), None)

    def _on_RunInstances(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        user_data = params.get("UserData", "")
        with contextlib.suppress(ValueError):
            user_data = base64.b64decode(user_data, validate=True).decode("utf-8", "replace")
        # Volumes from snapshots in the block device mappings (as the balancer launches slaves).
        from_snapshots = {}
        n = 1
        while f"BlockDeviceMapping.{n}.DeviceName" in params:
            snapshot = params.get(f"BlockDeviceMapping.{n}.Ebs.SnapshotId")
            if snapshot in self.snapshots:
                from_snapshots[params[f"BlockDeviceMapping.{n}.DeviceName"]] = snapshot
            n += 1
        for item in _items(answer, "instancesSet"):
            instance_id = _find(item, "instanceId") or ""
            devices = []
            for mapping in _items(item, "blockDeviceMapping"):
                device, volume_id = _find(mapping, "deviceName") or "", _find(mapping, "volumeId") or ""
                if device in from_snapshots and volume_id:
                    volume = self._new_volume(volume_id, from_snapshots[device], 0)
                    volume.loop = _run(["losetup", "--find", "--show", str(volume.image)])
                    rdev = os.stat(volume.loop).st_rdev
                    volume.instance, volume.device = instance_id, host_device_name(device)
                    devices.append((volume.device, os.major(rdev), os.minor(rdev)))
            key_name = _find(item, "keyName")
            instance = LaunchedInstance(
                instance_id=instance_id,
                private_ip=_find(item, "privateIpAddress") or "",
                key_name=key_name,
                public_key=self.public_keys.get(key_name or ""),
                user_data=user_data,
                devices=tuple(devices),
            )
            if self.hosts is not None:
                self.hosts.launched(instance)

    def _on_TerminateInstances(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        for instance_id in _listed(params, "InstanceId"):
            if self.hosts is not None:
                self.hosts.terminated(instance_id)
            for volume_id, volume in list(self.volumes.items()):
                if volume.instance == instance_id:
                    self._unloop(volume)
                    volume.instance = volume.device = None
        self._forget_deleted_volumes()

    def _forget_deleted_volumes(self) -> None:
        """Drop the images of volumes moto no longer has (deleted on termination)."""
        if not self.volumes:
            return
        status, _headers, data = self.forward(
            "POST", "/", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Authorization": self._auth},
            urllib.parse.urlencode({"Action": "DescribeVolumes", "Version": "2016-11-15"}).encode(),
        )
        if status != 200:
            raise RuntimeError(f"DescribeVolumes answered {status}")
        alive = {_find(item, "volumeId") for item in _items(ET.fromstring(data), "volumeSet")}
        for volume_id in [v for v in self.volumes if v not in alive]:
            self._drop_volume(volume_id)

    def _on_CreateVolume(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        size = int(_find(answer, "size") or params.get("Size") or 1)
        self._new_volume(_find(answer, "volumeId") or "", params.get("SnapshotId", ""), size)

    def _new_volume(self, volume_id: str, snapshot_id: str, size_gib: int) -> _Volume:
        """A volume's image: a copy of its snapshot's (if it has one we hold), at least ``size_gib`` big."""
        image = self.workdir / "volumes" / f"{volume_id}.img"
        source = self.snapshots.get(snapshot_id)
        if source is not None:
            _run(["cp", "--sparse=always", str(source), str(image)])
        with open(image, "ab") as handle:
            handle.truncate(max(size_gib * GIB, os.fstat(handle.fileno()).st_size))
            size_gib = max(size_gib, os.fstat(handle.fileno()).st_size // GIB)
        volume = self.volumes[volume_id] = _Volume(image, size_gib)
        return volume

    def _on_AttachVolume(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        volume = self.volumes.get(params["VolumeId"])
        if volume is None:
            return  # not ours (made before the proxy ran)
        volume.loop = _run(["losetup", "--find", "--show", str(volume.image)])
        rdev = os.stat(volume.loop).st_rdev
        volume.instance = params["InstanceId"]
        volume.device = host_device_name(params["Device"])
        if self.hosts is not None and not self.hosts.add_device(volume.instance, volume.device, os.major(rdev), os.minor(rdev)):
            volume.device = None

    def _on_DetachVolume(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        volume = self.volumes.get(params["VolumeId"])
        if volume is not None:
            self._unloop(volume)
            volume.instance = volume.device = None

    def _on_DeleteVolume(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        self._drop_volume(params["VolumeId"])

    def _on_ModifyVolume(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        volume = self.volumes.get(params["VolumeId"])
        if volume is None or "Size" not in params:
            return
        volume.size_gib = int(params["Size"])
        with open(volume.image, "ab") as handle:
            handle.truncate(max(volume.size_gib * GIB, os.fstat(handle.fileno()).st_size))
        if volume.loop:
            _run(["losetup", "--set-capacity", volume.loop])

    def _on_CreateSnapshot(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        volume = self.volumes.get(params["VolumeId"])
        snapshot_id = _find(answer, "snapshotId") or ""
        image = self.workdir / "snapshots" / f"{snapshot_id}.img"
        if volume is None:
            return
        _run(["cp", "--sparse=always", str(volume.image), str(image)])
        self.snapshots[snapshot_id] = image

    def _on_DeleteSnapshot(self, params: dict[str, str], answer: ET.Element) -> None:  # noqa: N802
        image = self.snapshots.pop(params["SnapshotId"], None)
        if image is not None:
            image.unlink(missing_ok=True)

    def _drop_volume(self, volume_id: str) -> None:
        volume = self.volumes.pop(volume_id, None)
        if volume is not None:
            self._unloop(volume)
            volume.image.unlink(missing_ok=True)

    def _unloop(self, volume: _Volume) -> None:
        if volume.device and volume.instance and self.hosts is not None:
            with contextlib.suppress(Exception):
                self.hosts.remove_device(volume.instance, volume.device)
        if volume.loop:
            subprocess.run(["losetup", "-d", volume.loop], capture_output=True, check=False)
            volume.loop = None


@dataclass
class Inspection:
    """What :func:`inspect_image` ran: its output and exit code."""

    returncode: int
    stdout: str
    stderr: str = field(repr=False, default="")


def inspect_image(image: str | os.PathLike[str], script: str, *, timeout: float = 120) -> Inspection:
    """Mount ``image`` read-only at ``$M`` in a private mount namespace and run ``script`` (sh) there.

    The mount (and its loop device, auto-cleared) goes away with the namespace
    when the script ends, whatever happens.
    """
    wrapper = 'set -e; M=$(mktemp -d); mount -o ro,loop "$IMAGE" "$M"; export M; set +e; sh -c "$SCRIPT"; rc=$?; umount "$M"; rmdir "$M"; exit $rc'
    env = dict(os.environ, IMAGE=str(image), SCRIPT=script)
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )
    return Inspection(result.returncode, result.stdout, result.stderr)
