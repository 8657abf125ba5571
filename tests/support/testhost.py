# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Real test hosts: a network namespace plus ``systemd-nspawn --boot`` on a cached Debian rootfs.

Used by the molecule scenarios (through the command line below) and by
Python tests (through the API)::

    with TestHost("sync-master") as host:       # boots, waits for sshd
        host.run("systemctl is-system-running")
        print(host.address, host.gateway)       # 10.200.N.2 (host), 10.200.N.1 (our side)

    python tests/support/testhost.py rootfs                  # build or reuse the cache
    python tests/support/testhost.py up --state-dir D a b    # boot hosts a and b, print JSON
    python tests/support/testhost.py spawn --state-dir D --name moto -- moto_server -H 10.200.7.1 -p 5000
    python tests/support/testhost.py down --state-dir D --all   # hosts and spawned processes

What each host is:

- Root filesystem: ``debootstrap --variant=minbase`` of Debian bookworm with
  ``DEFAULT_PACKAGES`` (or the packages you name), built once and cached as a
  zstd tarball in ``~/.cache/gbrowse_aws/`` (``$GBROWSE_AWS_CACHE``), outside
  the repository. The tarball is unpacked once next to it and shared read-only;
  each host boots on its own overlayfs, so hosts never see each other's changes
  and a host's changes vanish with it.
- Network: its own namespace ``gbaws-NAME`` with one veth pair, host side
  ``10.200.N.1/30``, inside ``10.200.N.2/30``, no default route. The host gets
  ``blackhole 10.200.0.0/16`` first, so a packet to a 10.200 address with no
  test host behind it goes nowhere, never out of the machine.
- Boot: real systemd as PID 1 (``systemd-nspawn --boot``), sshd answering for
  root with a key cached next to the rootfs (``testhost_ed25519``).

Safety: every process started here (nspawn, spawned helpers) is recorded with
its PID and command line in the state directory and stopped by that PID only
after checking the command line still matches. ``down`` removes the overlay,
the namespace and, when no other 10.200 test network is left, the blackhole
route, also after a failed or interrupted run. Must run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

#: What a test host has installed. Add packages through ``ensure_rootfs(packages=...)``;
#: each distinct list gets its own cached rootfs.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "apache2",
    "ca-certificates",
    "curl",
    "dbus",
    "iproute2",
    "openssh-server",
    "procps",
    "python3",
    "python3-apt",
    "python3-venv",
    "rsync",
    "sudo",
    "systemd",
    "systemd-sysv",
)
SUITE = "bookworm"
#: Bump when the build recipe changes, so old caches are not reused.
RECIPE = 2
NET = "10.200"
BLACKHOLE = f"{NET}.0.0/16"
#: Host-wide bookkeeping shared by every user of this module (net slots, blackhole users).
RUN = Path("/run/gbrowse_aws")
#: Units a test host has no use for (timers that would wake up mid-test).
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "man-db.timer",
    "systemd-tmpfiles-clean.timer",
    "getty@tty1.service",
    "console-getty.service",
)
SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=3",
)  # fmt: skip


class TestHostError(RuntimeError):
    """A test host could not be built, booted or torn down."""


def log(message: str) -> None:
    print(f"testhost: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("GBROWSE_AWS_CACHE") or Path.home() / ".cache" / "gbrowse_aws")


def _run(cmd: t.Sequence[str], *, check: bool = True, quiet: bool = False, **kwargs: t.Any) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise TestHostError(f"{shlex.join(cmd)} exited {result.returncode}: {(result.stderr or result.stdout).strip()[-2000:]}")
    if not quiet and result.returncode != 0:
        log(f"{shlex.join(cmd)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result


@contextlib.contextmanager
def _locked(path: Path) -> t.Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise TestHostError("test hosts need root (network namespaces, overlayfs, systemd-nspawn)")


# ---------------------------------------------------------------------------
# Root filesystem


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (``$GBROWSE_AWS_DEBIAN_MIRROR`` overrides)."""
    if os.environ.get("GBROWSE_AWS_DEBIAN_MIRROR"):
        return os.environ["GBROWSE_AWS_DEBIAN_MIRROR"]
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                key, colon, value = line.partition(":")
                if colon and not line.startswith("#"):
                    fields[key.strip().lower()] = value.strip()
            if SUITE in fields.get("suites", "").split() and "debian" in fields.get("uris", ""):
                return fields["uris"].split()[0]
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                words = line.split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE and "debian" in line:
                    return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def rootfs_key(packages: t.Iterable[str]) -> str:
    text = json.dumps({"suite": SUITE, "recipe": RECIPE, "packages": sorted(set(packages))})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ssh_key() -> Path:
    """The private key that logs in as root on every test host (created once, cached)."""
    key = cache_dir() / "testhost_ed25519"
    with _locked(cache_dir() / ".sshkey.lock"):
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gbrowse_aws testhost", "-f", str(key)])
    return key


def ensure_rootfs(packages: t.Iterable[str] = DEFAULT_PACKAGES) -> Path:
    """An unpacked, read-only rootfs with ``packages``: from the cache, else built (minutes)."""
    _require_root()
    packages = sorted(set(packages))
    key = rootfs_key(packages)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-{SUITE}-{key}.tar.zst"
    root = cache / f"rootfs-{SUITE}-{key}"
    ready = root / ".gbrowse-aws-rootfs"
    # One builder at a time per rootfs, across processes (flock); the others wait and reuse it.
    with _locked(cache / f".rootfs-{key}.lock"):
        if ready.exists() and tarball.exists():
            return root
        if root.exists():  # half unpacked or stale: start again
            shutil.rmtree(root)
        for leftover in [*cache.glob(f".build-{key}-*"), *cache.glob(f".unpack-{key}-*")]:
            log(f"removing {leftover.name}, left by an interrupted build")
            _remove_tree(leftover)
        if not tarball.exists():
            _build_tarball(packages, tarball, key)
        start = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{key}-", dir=cache))
        try:
            _run(["sh", "-c", 'zstd -dc -q "$1" | tar -x --numeric-owner --xattrs --xattrs-include="*" -C "$2"', "sh", str(tarball), str(tmp)])
            (tmp / ".gbrowse-aws-rootfs").write_text(json.dumps({"suite": SUITE, "packages": packages}) + "\n")
            tmp.rename(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"unpacked {tarball.name} in {time.monotonic() - start:.1f} s")
    return root


def _remove_tree(path: Path) -> None:
    """rm -rf a build tree, first unmounting what a killed debootstrap left mounted in it (proc, sys)."""
    prefix = str(path.resolve()) + "/"
    with contextlib.suppress(OSError):
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            _run(["umount", "-l", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)


def _build_tarball(packages: list[str], tarball: Path, key: str) -> None:
    for tool in ("debootstrap", "zstd", "systemd-nspawn", "ssh-keygen"):
        if not shutil.which(tool):
            raise TestHostError(f"{tool} is missing: apt-get install debootstrap zstd systemd-container openssh-client")
    mirror = debian_mirror()
    build = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=tarball.parent))
    start = time.monotonic()
    log(f"building the {SUITE} rootfs from {mirror} (once; minutes, longer on a busy machine): {' '.join(packages)}")
    try:
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(build), mirror])
        _customize(build)
        tmp = tarball.with_suffix(".partial")
        _run(["sh", "-c", 'tar -C "$1" --numeric-owner --xattrs --xattrs-include="*" -cf - . | zstd -q -T0 -3 -o "$2" -f', "sh", str(build), str(tmp)])
        tmp.rename(tarball)
    finally:
        _remove_tree(build)
    log(f"built {tarball} ({tarball.stat().st_size >> 20} MB) in {time.monotonic() - start:.0f} s")


def _customize(root: Path) -> None:
    """What every test host needs and debootstrap does not do."""
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/10-testhost.conf").write_text(
        "# gbrowse_aws test host: root by key only, no DNS lookups\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    )
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/dev/null")
    # Each host gets a transient machine id from nspawn.
    (root / "etc/machine-id").write_text("")
    for leftover in (root / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    # No apt source that a test could reach by mistake: the hosts are offline.
    (root / "etc/apt/sources.list").write_text("# test host: offline, no sources\n")


# ---------------------------------------------------------------------------
# Processes recorded by PID and command line


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1] if raw else []


def _alive(pid: int, cmdline: t.Sequence[str] | None = None) -> bool:
    current = _cmdline(pid)
    if current is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    if cmdline is None:
        return True
    # A script started by its #! line shows its interpreter in front.
    return bool(current) and list(current[-len(cmdline):]) == list(cmdline)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _reap_zombie(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_process(pid: int, cmdline: t.Sequence[str], *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop ``pid`` if it still runs ``cmdline``: ``sig``, then SIGKILL after ``timeout``."""
    if not _alive(pid, cmdline):
        _reap_zombie(pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap_zombie(pid)
        if not _alive(pid, cmdline):
            return
        time.sleep(0.1)
    log(f"pid {pid} ({cmdline[0] if cmdline else '?'}) ignored signal {sig}: SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _attempt in range(50):
        _reap_zombie(pid)
        if not _alive(pid, cmdline):
            return
        time.sleep(0.1)


def spawn(
    state_dir: Path,
    name: str,
    cmd: t.Sequence[str],
    *,
    env: t.Mapping[str, str] | None = None,
    wait_url: str | None = None,
    timeout: float = 30.0,
) -> int:
    """Start ``cmd`` detached (own session), log to STATE/NAME.log, record it for ``reap``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record = state_dir / f"proc-{name}.json"
    if record.exists():
        reap(state_dir, name)
    environ = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    environ.update(env or {})
    with open(state_dir / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=environ)
    record.write_text(json.dumps({"pid": proc.pid, "cmdline": list(cmd)}) + "\n")
    if wait_url:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise TestHostError(f"{name} exited {proc.returncode}; see {state_dir / (name + '.log')}")
            try:
                with urllib.request.urlopen(wait_url, timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    reap(state_dir, name)
                    raise TestHostError(f"{name} did not answer {wait_url} within {timeout:.0f} s") from None
                time.sleep(0.2)
    return proc.pid


def reap(state_dir: Path, name: str) -> None:
    record = state_dir / f"proc-{name}.json"
    with contextlib.suppress(FileNotFoundError):
        info = json.loads(record.read_text())
        stop_process(int(info["pid"]), info["cmdline"])
        record.unlink()


# ---------------------------------------------------------------------------
# Network slots: 10.200.N.0/30 per host, N claimed under a host-wide lock


def _netns_exists(netns: str) -> bool:
    return Path("/run/netns", netns).exists()


def _addresses_in_use() -> str:
    return _run(["ip", "-o", "addr", "show"], quiet=True).stdout


def _claim_slot(netns: str) -> int:
    slots = RUN / "net"
    slots.mkdir(parents=True, exist_ok=True)
    in_use = _addresses_in_use()
    for n in range(10, 250):
        slot = slots / str(n)
        if slot.exists():
            owner = slot.read_text().strip()
            if owner == netns or _netns_exists(owner):
                continue
            slot.unlink()  # stale: its namespace is gone
        if f" {NET}.{n}." in in_use:
            continue  # someone not using this module has it
        slot.write_text(netns + "\n")
        return n
    raise TestHostError(f"no free {NET}.N.0/30 slot")


def _release_slot(n: int, netns: str) -> None:
    slot = RUN / "net" / str(n)
    with contextlib.suppress(FileNotFoundError):
        if slot.read_text().strip() == netns:
            slot.unlink()


def _ensure_blackhole() -> None:
    routes = _run(["ip", "route", "show", "type", "blackhole"], quiet=True).stdout
    if BLACKHOLE not in routes.split():
        _run(["ip", "route", "add", "blackhole", BLACKHOLE])


def _maybe_remove_blackhole() -> None:
    """Remove the blackhole once no 10.200 test network (ours or anyone's) is left."""
    if any((RUN / "net").glob("*")) or f" {NET}." in _addresses_in_use():
        return
    _run(["ip", "route", "del", "blackhole", BLACKHOLE], check=False, quiet=True)


# ---------------------------------------------------------------------------
# Hosts


def _valid_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}[a-z0-9]", name):
        raise TestHostError(f"bad test host name {name!r}: lower-case letters, digits and '-', 2-42 characters")
    return name


class TestHost:
    """One booted test host. State lives in ``STATE_DIR/NAME/`` so another process can tear it down."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str, state_dir: Path | str | None = None, *, packages: t.Iterable[str] = DEFAULT_PACKAGES) -> None:
        self.name = _valid_name(name)
        self.state_dir = Path(state_dir) if state_dir else cache_dir() / "hosts"
        self.packages = tuple(packages)
        self.dir = self.state_dir / name
        self.netns = f"gbaws-{name}"[:40]
        self.info: dict[str, t.Any] = {}
        state = self.dir / "state.json"
        if state.exists():
            self.info = json.loads(state.read_text())

    # -- properties ---------------------------------------------------------

    @property
    def index(self) -> int:
        return int(self.info["index"])

    @property
    def address(self) -> str:
        """The host's address (inside its namespace)."""
        return f"{NET}.{self.index}.2"

    @property
    def gateway(self) -> str:
        """Our side of the veth: where a server for the test host listens (moto, a fake metadata service)."""
        return f"{NET}.{self.index}.1"

    @property
    def veth(self) -> str:
        return f"vgbaws{self.index}"

    def describe(self) -> dict[str, t.Any]:
        return {
            "name": self.name,
            "address": self.address,
            "gateway": self.gateway,
            "netns": self.netns,
            "user": "root",
            "port": 22,
            "identity_file": str(ssh_key()),
            "state_dir": str(self.dir),
        }

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "state.json").write_text(json.dumps(self.info, indent=1) + "\n")

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Network, overlay and ``systemd-nspawn --boot``; returns at once (see ``wait``)."""
        _require_root()
        if self.info.get("nspawn_pid") and _alive(self.info["nspawn_pid"], self.info["nspawn_cmdline"]):
            raise TestHostError(f"test host {self.name} already runs (pid {self.info['nspawn_pid']})")
        self.down()  # leftovers of an interrupted run
        lower = ensure_rootfs(self.packages)
        key = ssh_key()
        with _locked(RUN / ".net.lock"):
            _ensure_blackhole()
            self.info = {"index": _claim_slot(self.netns), "netns": self.netns, "name": self.name}
            self._save()
            _run(["ip", "netns", "add", self.netns])
        self.info["netns_created"] = True
        self._save()
        _run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        _run(["ip", "addr", "add", f"{self.gateway}/30", "dev", self.veth])
        _run(["ip", "link", "set", self.veth, "up"])
        _run(["ip", "-n", self.netns, "addr", "add", f"{self.address}/30", "dev", "eth0"])
        _run(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])

        merged, upper, work = self.dir / "root", self.dir / "upper", self.dir / "work"
        for d in (merged, upper, work):
            d.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)])
        self.info["mounted"] = str(merged)
        self._save()
        (merged / "etc/hostname").write_text(self.name + "\n")
        (merged / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        ssh_dir = merged / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        os.chmod(ssh_dir / "authorized_keys", 0o600)

        cmd = [
            shutil.which("systemd-nspawn") or "systemd-nspawn",
            "-q",
            "-D", str(merged),
            "--boot",
            f"--machine={self.name}",
            f"--network-namespace-path=/run/netns/{self.netns}",
            "--register=no",
            "--keep-unit",
            "--console=passive",
        ]  # fmt: skip
        with open(self.dir / "console.log", "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        self.info.update(nspawn_pid=proc.pid, nspawn_cmdline=cmd, started=time.time())
        self._save()

    def wait(self, timeout: float = 90.0) -> str:
        """Wait for sshd, then for systemd to finish booting; return ``is-system-running``'s answer."""
        deadline = time.monotonic() + timeout
        while True:
            if not _alive(self.info["nspawn_pid"], self.info["nspawn_cmdline"]):
                tail = (self.dir / "console.log").read_text(errors="replace")[-2000:]
                raise TestHostError(f"systemd-nspawn for {self.name} exited during boot:\n{tail}")
            with contextlib.suppress(OSError):
                with socket.create_connection((self.address, 22), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(4).startswith(b"SSH-"):
                        break
            if time.monotonic() > deadline:
                raise TestHostError(f"sshd on {self.name} ({self.address}) did not answer within {timeout:.0f} s")
            time.sleep(0.1)
        left = max(5, int(deadline - time.monotonic()))
        result = self.run(f"timeout {left} systemctl is-system-running --wait", check=False)
        state = result.stdout.strip() or "unknown"
        if state != "running":
            failed = self.run("systemctl --failed --no-legend --plain", check=False).stdout.strip()
            log(f"{self.name}: system is {state}; failed units: {failed or 'none'}")
        return state

    def up(self, timeout: float = 90.0) -> "TestHost":
        self.start()
        self.wait(timeout)
        return self

    def run(self, command: str, *, check: bool = True, timeout: float = 120.0, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a shell command on the host over ssh as root."""
        cmd = ["ssh", *SSH_OPTIONS, "-i", str(ssh_key()), f"root@{self.address}", command]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and result.returncode != 0:
            raise TestHostError(f"{self.name}: {command!r} exited {result.returncode}: {result.stderr.strip()[-1000:]}")
        return result

    def poweroff(self) -> None:
        """Ask its systemd to power off (SIGRTMIN+4); ``down`` waits for it."""
        pid, cmdline = self.info.get("nspawn_pid"), self.info.get("nspawn_cmdline")
        if pid and _alive(pid, cmdline):
            for child in _children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGRTMIN + 4)

    def down(self) -> None:
        """Power off, unmount, remove the namespace. Safe to repeat."""
        info = self.info
        pid, cmdline = info.get("nspawn_pid"), info.get("nspawn_cmdline")
        if pid and _alive(pid, cmdline):
            self.poweroff()
            deadline = time.monotonic() + 20
            while _alive(pid, cmdline) and time.monotonic() < deadline:
                _reap_zombie(pid)
                time.sleep(0.1)
            if _alive(pid, cmdline):
                log(f"{self.name}: did not power off in 20 s; killing its init")
                for child in _children(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)  # kills the whole PID namespace
                stop_process(pid, cmdline, timeout=10)
            _reap_zombie(pid)
        merged = info.get("mounted")
        if merged and os.path.ismount(merged):
            if _run(["umount", merged], check=False, quiet=True).returncode != 0:
                time.sleep(0.5)
                if _run(["umount", merged], check=False, quiet=True).returncode != 0:
                    _run(["umount", "-l", merged], check=False)
        if info.get("netns_created") or (info.get("netns") and _netns_exists(info["netns"])):
            if _netns_exists(self.netns):
                _run(["ip", "netns", "del", self.netns], check=False)
        if "index" in info:
            with _locked(RUN / ".net.lock"):
                _release_slot(int(info["index"]), self.netns)
                _maybe_remove_blackhole()
        if self.dir.exists():
            console = self.dir / "console.log"
            if console.exists():
                shutil.copy(console, self.state_dir / f"{self.name}.console.log")
            shutil.rmtree(self.dir, ignore_errors=True)
        self.info = {}

    def __enter__(self) -> "TestHost":
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()


def up_many(names: t.Sequence[str], state_dir: Path, packages: t.Iterable[str] = DEFAULT_PACKAGES, timeout: float = 90.0) -> list[TestHost]:
    """Boot several hosts in parallel (they share one rootfs); tear all down if one fails."""
    hosts = [TestHost(n, state_dir, packages=packages) for n in names]
    ensure_rootfs(packages)
    try:
        for host in hosts:
            host.start()
        for host in hosts:
            host.wait(timeout)
    except BaseException:
        for host in hosts:
            host.down()
        raise
    return hosts


def down_all(state_dir: Path) -> None:
    """Every host and spawned process recorded in ``state_dir``.

    Hosts first: their services may still talk to the helpers (a balancer
    terminating its slaves through moto) while they shut down.
    """
    if not state_dir.is_dir():
        return
    hosts = [TestHost(state.parent.name, state_dir) for state in sorted(state_dir.glob("*/state.json"))]
    for host in hosts:
        host.poweroff()  # all at once, then wait for each
    for host in hosts:
        host.down()
    for record in sorted(state_dir.glob("proc-*.json")):
        reap(state_dir, record.name[len("proc-") : -len(".json")])


# ---------------------------------------------------------------------------
# Command line


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rootfs", help="build or reuse the cached rootfs; print its path")
    p.add_argument("--package", action="append", default=[], help="extra package (repeatable)")
    p = sub.add_parser("up", help="boot hosts; print a JSON list describing them")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--package", action="append", default=[])
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("names", nargs="+")
    p = sub.add_parser("down", help="tear hosts down (and with --all, spawned processes)")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--all", action="store_true")
    p.add_argument("names", nargs="*")
    p = sub.add_parser("run", help="run a shell command on a host over ssh")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("name")
    p.add_argument("shell_command")
    p = sub.add_parser("spawn", help="start a helper process (e.g. moto_server) recorded for down --all")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--wait-url", help="return once this URL answers")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("reap", help="stop a spawned helper by its recorded pid")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "rootfs":
            print(ensure_rootfs(DEFAULT_PACKAGES + tuple(args.package)))
        elif args.command == "up":
            hosts = up_many(args.names, args.state_dir, DEFAULT_PACKAGES + tuple(args.package), args.timeout)
            print(json.dumps([h.describe() for h in hosts], indent=1))
        elif args.command == "down":
            if args.all:
                down_all(args.state_dir)
            for name in args.names:
                TestHost(name, args.state_dir).down()
        elif args.command == "run":
            result = TestHost(args.name, args.state_dir).run(args.shell_command, check=False)
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return result.returncode
        elif args.command == "spawn":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            print(spawn(args.state_dir, args.name, cmd, wait_url=args.wait_url))
        elif args.command == "reap":
            reap(args.state_dir, args.name)
    except TestHostError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
