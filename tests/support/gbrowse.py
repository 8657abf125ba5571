# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Real GBrowse 2.56 (Debian's ``gbrowse`` and ``gbrowse-data``): a private master and render slaves.

Used by tests/system/test_gbrowse.py and the demo::

    with StagingSubnet() as subnet:                              # 10.200.N.0/24, a bridge here
        with GBrowseMaster(renderfarm_fix=True) as master:        # private Apache, CGI gbrowse_img
            with GBrowseSlaves(ec2, subnet, "my-balancer") as slaves:
                # a real gbrowse_slave at each running instance's private IP
                with ImageLoad(master, threads=3) as load:        # track images, a new region each
                    ...
                slaves.rendered()                                 # requests each slave served

- :class:`GBrowseMaster`: a copy of /etc/gbrowse (``GBROWSE_CONF``) with the
  ``*_base`` paths moved to a temp dir, served by a :class:`PrivateApache`
  with mod_cgid and the aliases of Debian's ``gbrowse.conf``; its
  ``renderfarm.conf`` is where the balancer writes. Databases stay at
  Debian's ``/var/lib/gbrowse/databases``, which the slaves read too.
  ``renderfarm_fix`` applies the role's fix for GBrowse 2.56's render farm the
  way the role does: its Perl module copied, its Apache snippet rendered from
  roles/balancer/templates and included.
- :class:`GBrowseSlaves`: watches moto; for each running instance it makes a
  network namespace on the subnet's bridge holding the instance's private IP
  (gbrowse_slave binds 0.0.0.0, so each needs its own) and starts Debian's
  ``gbrowse_slave`` in it as www-data:www-data (its own ``--user`` keeps gid 0
  and could not read the databases). A slave whose instance is gone is stopped.
- :class:`ImageLoad`: ``gbrowse_img`` requests from a few threads, each for a
  region never asked before (so GBrowse's track cache never answers); every
  answer's status is kept.

Network safety: slaves live only in namespaces this module creates, on a
claimed 10.200.N.0/24 behind the blackhole route (tests/support/staging.py);
the master listens on 127.0.0.1. Every process is stopped by PID and every
namespace removed, also after a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.gmod.gbrowse_aws.tests.support import testhost
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import PrivateApache

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "balancer"
FIX_MODULE = ROLE / "files" / "perl" / "GBrowseAWS" / "RenderFarmFix.pm"
FIX_TEMPLATE = ROLE / "templates" / "gbrowse-renderfarm-fix.conf.j2"

DEBIAN_CONF = Path("/etc/gbrowse")
DEBIAN_APACHE_CONF = Path("/etc/apache2/conf-available/gbrowse.conf")
CGI_DIR = Path("/usr/lib/cgi-bin/gbrowse")
SLAVE = Path("/usr/bin/gbrowse_slave")
USER = "www-data"
PORT = 8101
SOURCE = "yeast"  # gbrowse-data's sample data source (yeast_simple.conf)
TRACKS = ("Genes", "CDS", "tRNAs", "Transp")
#: Lengths of chrI and chrII in the sample data: regions are drawn inside them.
CHROMOSOMES = (("chrI", 230_000), ("chrII", 813_000))


def unavailable() -> str | None:
    """Why real GBrowse cannot run here, or None."""
    if os.geteuid() != 0:
        return "real GBrowse tests need root (network namespaces, Apache as www-data)"
    for path in (DEBIAN_CONF / "GBrowse.conf", DEBIAN_CONF / "yeast_simple.conf", CGI_DIR / "gbrowse_img", SLAVE):
        if not path.exists():
            return f"{path} missing: install the gbrowse and gbrowse-data packages (make setup)"
    for tool in ("setpriv", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} missing"
    return None


def _www_data() -> pwd.struct_passwd:
    return pwd.getpwnam(USER)


def _chown_www(path: Path) -> None:
    entry = _www_data()
    os.chown(path, entry.pw_uid, entry.pw_gid)


def render_fix_conf(perl_dir: str | os.PathLike[str], cgi_dir: str | os.PathLike[str] = CGI_DIR) -> str:
    """The role's Apache snippet for the render farm fix, rendered as the role renders it."""
    import jinja2

    template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(
        FIX_TEMPLATE.read_text(encoding="utf-8")
    )
    return template.render(
        ansible_managed="tests/support/gbrowse.py",
        balancer_gbrowse_cgi_dir=str(cgi_dir),
        balancer_gbrowse_fix_perl_dir=str(perl_dir),
    )


class GBrowseMaster:
    """Debian's GBrowse with its own configuration copy, served by a private Apache (CGI). Context manager."""

    def __init__(self, *, renderfarm_fix: bool) -> None:
        self.renderfarm_fix = renderfarm_fix
        self.dir: Path | None = None
        self.apache: PrivateApache | None = None

    @property
    def conf_dir(self) -> Path:
        """GBROWSE_CONF: the copy of /etc/gbrowse."""
        return self._dir() / "etc"

    @property
    def renderfarm_conf(self) -> Path:
        return self.conf_dir / "renderfarm.conf"

    @property
    def status_url(self) -> str:
        return self._apache().status_url

    def image_path(self, name: str, width: int = 600) -> str:
        return f"/gb2/gbrowse_img/{SOURCE}/?name={name};type={'+'.join(TRACKS)};width={width}"

    def _dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("GBrowseMaster not started")
        return self.dir

    def _apache(self) -> PrivateApache:
        if self.apache is None:
            raise RuntimeError("GBrowseMaster not started")
        return self.apache

    def start(self) -> GBrowseMaster:
        # A world-traversable temp dir: Apache's CGI children run as www-data.
        self.dir = Path(tempfile.mkdtemp(prefix="gbrowse-master-"))
        self.dir.chmod(0o755)
        shutil.copytree(DEBIAN_CONF, self.conf_dir, symlinks=True)
        for sub in ("cache", "lib", "lib/userdata", "lib/databases"):
            (self.dir / sub).mkdir()
            _chown_www(self.dir / sub)
        self._write_gbrowse_conf()
        conf = self.dir / "httpd-gbrowse.conf"
        conf.write_text(self._apache_conf(), encoding="utf-8")
        self.apache = PrivateApache(
            extra_modules=("alias", "env", "cgid"),
            extra_conf=f'Include "{conf}"',
            run_as=(USER, USER),
        )
        self.apache.start()
        return self

    def _write_gbrowse_conf(self) -> None:
        """GBrowse.conf with every ``*_base`` path but db_base (the databases stay Debian's) moved here."""
        path = self.conf_dir / "GBrowse.conf"
        text = path.read_text(encoding="utf-8")
        moved = {
            "config_base": str(self.conf_dir),
            "tmp_base": str(self.dir / "cache"),  # type: ignore[operator]
            "persistent_base": str(self.dir / "lib"),  # type: ignore[operator]
            "userdata_base": str(self.dir / "lib" / "userdata"),  # type: ignore[operator]
            "user_account_db": f"DBI:SQLite:{self.dir}/lib/databases/users.sqlite",
            "admin_dbs": f"{self.dir}/lib/databases/admin_uploads",
        }
        for key, value in moved.items():
            text, count = re.subn(rf"(?m)^{key}(\s*)=.*$", lambda m, k=key, v=value: f"{k}{m.group(1)}= {v}", text)
            if count != 1:
                raise RuntimeError(f"{path}: expected one {key} line, found {count}")
        if "#include renderfarm.conf" not in text:
            raise RuntimeError(f"{path} does not include renderfarm.conf")
        path.write_text(text, encoding="utf-8")

    def _apache_conf(self) -> str:
        """The aliases and CGI directory of Debian's gbrowse.conf, pointed at this copy."""
        root = self._dir()
        lines = [
            "# GBrowse as Debian's /etc/apache2/conf-available/gbrowse.conf serves it, CGI only.",
            "# An image costs seconds of CPU; on a busy test machine more than Apache's usual 30 s.",
            "Timeout 120",
            f'Alias "/gbrowse2/i/" "{root}/cache/images/"',
            'Alias "/gbrowse2" "/usr/share/gbrowse/htdocs"',
            f'ScriptAlias "/gb2" "{CGI_DIR}"',
            '<Directory "/usr/share/gbrowse/htdocs">',
            "    Require all granted",
            "</Directory>",
            f'<Directory "{root}/cache/images/">',
            "    Require all granted",
            "</Directory>",
            f'<Directory "{CGI_DIR}">',
            "    Options ExecCGI",
            f'    SetEnv GBROWSE_CONF "{self.conf_dir}"',
            "    Require all granted",
            "</Directory>",
        ]
        if self.renderfarm_fix:
            # As the role does: the module in a directory of its own, the snippet included.
            perl_dir = root / "perl"
            (perl_dir / "GBrowseAWS").mkdir(parents=True)
            shutil.copy(FIX_MODULE, perl_dir / "GBrowseAWS" / FIX_MODULE.name)
            for path in (perl_dir, perl_dir / "GBrowseAWS"):
                path.chmod(0o755)
            (perl_dir / "GBrowseAWS" / FIX_MODULE.name).chmod(0o644)
            snippet = root / "gbrowse-renderfarm-fix.conf"
            snippet.write_text(render_fix_conf(perl_dir), encoding="utf-8")
            lines.append(f'Include "{snippet}"')
        return "\n".join(lines) + "\n"

    def get_image(self, name: str, timeout: float = 60.0) -> tuple[int, bytes]:
        """GET one gbrowse_img; (status, body)."""
        apache = self._apache()
        conn = http.client.HTTPConnection(apache.host, apache.port, timeout=timeout)
        try:
            conn.request("GET", self.image_path(name))
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def error_log(self, tail: int = 40) -> str:
        return self.apache.error_log(tail) if self.apache else ""

    def _processes(self) -> list[int]:
        """GBrowse processes of this master still alive: ones GBrowse forked outlive Apache."""
        if self.dir is None:
            return []
        marker = f"GBROWSE_CONF={self.conf_dir}".encode()
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            with contextlib.suppress(OSError):
                if marker in environ.read_bytes().split(b"\0"):
                    found.append(int(environ.parent.name))
        return found

    def stop(self) -> None:
        try:
            if self.apache is not None:
                self.apache.stop()
                self.apache = None
        finally:
            for pid in self._processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self._processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> GBrowseMaster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- render slaves ----------------------------------------------------------------


class SlaveHost:
    """One ``gbrowse_slave`` in a network namespace of its own, at ``address`` on the subnet's bridge."""

    def __init__(self, address: str, subnet: t.Any, workdir: Path | None = None) -> None:
        octet = address.rsplit(".", 1)[1]
        self._own_dir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="gbrowse-slave-"))
            workdir.chmod(0o755)
        self.address = address
        self.subnet = subnet
        self.netns = f"gbaws-gs{subnet.index}-{octet}"
        self.veth = f"gbs{subnet.index}x{octet}"
        self.dir = workdir / f"slave-{address}"
        self.log = self.dir / "gbrowse_slave.log"
        self.pid_file = self.dir / "gbrowse_slave.pid"
        self.started = False

    def start(self) -> None:
        run = testhost._run
        self.dir.mkdir(parents=True)
        self.dir.chmod(0o755)
        (self.dir / "tmp").mkdir()
        for path in (self.dir, self.dir / "tmp"):
            _chown_www(path)
        # A link of this name is a killed run's on our claimed subnet (a namespace goes away
        # asynchronously, its veth with it): ours to remove.
        run(["ip", "link", "del", self.veth], check=False, quiet=True)
        run(["ip", "netns", "add", self.netns])
        self.started = True
        run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        run(["ip", "link", "set", self.veth, "master", self.subnet.bridge])
        run(["ip", "link", "set", self.veth, "up"])
        run(["ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0"])
        run(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        # As the slave's user data starts it: www-data with www-data's groups
        # (gbrowse_slave's own --user keeps gid 0: no access to the databases).
        cmd = [
            "ip", "netns", "exec", self.netns,
            "setpriv", "--reuid", USER, "--regid", USER, "--init-groups",
            str(SLAVE), "--port", str(PORT), "--verbose", "3",
            "--log", str(self.log), "--pid", str(self.pid_file), "--tmp", str(self.dir / "tmp"),
        ]  # fmt: skip
        # gbrowse_slave forks its daemon and exits; the daemon writes the pid file.
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"gbrowse_slave at {self.address} failed to start: {result.stderr.strip()}")

    def wait_answering(self, timeout: float = 60.0) -> None:
        """Until the slave answers ``HEAD /`` (403 REQUEST DATASOURCE, as the balancer's probe sees it)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(self.address, PORT, timeout=2)
                try:
                    conn.request("HEAD", "/")
                    conn.getresponse()
                    return
                finally:
                    conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"gbrowse_slave at {self.address} did not answer within {timeout:.0f} s")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """Every process in this slave's namespace (only ours are ever started there)."""
        if not Path("/run/netns", self.netns).exists():
            return []
        out = testhost._run(["ip", "netns", "pids", self.netns], check=False, quiet=True).stdout
        return [int(p) for p in out.split()]

    def rendered(self) -> int:
        """Render requests this slave served, from its own log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return 0
        return len(re.findall(r"operation=render_tracks; response=200;", text))

    def stop(self) -> None:
        """SIGTERM to the daemon (it stops its children), then SIGKILL to anything left; remove the namespace."""
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.started:
            # Deleting the veth at once frees the name; the namespace itself goes when the kernel gets to it.
            testhost._run(["ip", "link", "del", self.veth], check=False, quiet=True)
            if Path("/run/netns", self.netns).exists():
                testhost._run(["ip", "netns", "del", self.netns], check=False)
        self.started = False
        if self._own_dir:
            shutil.rmtree(self.dir.parent, ignore_errors=True)


class GBrowseSlaves:
    """A real gbrowse_slave for every running instance of ``balancer_id`` in moto. Context manager."""

    def __init__(self, client: t.Any, subnet: t.Any, balancer_id: str, *, interval: float = 0.3) -> None:
        self.client = client
        self.subnet = subnet
        self.balancer_id = balancer_id
        self.interval = interval
        self.dir = Path(tempfile.mkdtemp(prefix="gbrowse-slaves-"))
        self.dir.chmod(0o755)
        self.hosts: dict[str, SlaveHost] = {}  # instance id -> its slave
        self.retired: list[SlaveHost] = []  # stopped, logs kept for counting
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GBrowseSlaves:
        self._thread = threading.Thread(target=self._run, name="gbrowse slaves", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # a moto hiccup: next round
                self.errors.append(str(exc))
            self._stop.wait(self.interval)

    def _running(self) -> dict[str, str]:
        pages = self.client.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag:gbrowse-aws:balancer-id", "Values": [self.balancer_id]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        )
        return {i["InstanceId"]: i.get("PrivateIpAddress", "") for p in pages for r in p["Reservations"] for i in r["Instances"]}

    def sync(self) -> None:
        running = self._running()
        with self._lock:
            for instance_id in [i for i in self.hosts if i not in running]:
                host = self.hosts.pop(instance_id)
                host.stop()
                self.retired.append(host)
            for instance_id, address in running.items():
                if instance_id in self.hosts:
                    continue
                if not address or not self.subnet.network.overlaps(_net(address)):
                    self.errors.append(f"{instance_id}: address {address!r} not on the test subnet: no slave")
                    continue
                host = SlaveHost(address, self.subnet, self.dir)
                self.hosts[instance_id] = host
                host.start()

    def addresses(self) -> dict[str, str]:
        with self._lock:
            return {i: h.address for i, h in self.hosts.items()}

    def rendered(self, urls: t.Iterable[str] = ()) -> dict[str, int]:
        """Requests rendered per slave address, stopped slaves included; ``urls``: these slaves' (0 if none)."""
        with self._lock:
            hosts = [*self.retired, *self.hosts.values()]
        counts: dict[str, int] = {url.split("//", 1)[1].rsplit(":", 1)[0]: 0 for url in urls}
        for host in hosts:
            counts[host.address] = counts.get(host.address, 0) + host.rendered()
        return counts

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        with self._lock:
            for host in self.hosts.values():
                host.stop()
            self.retired.extend(self.hosts.values())
            self.hosts.clear()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> GBrowseSlaves:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _net(address: str) -> t.Any:
    import ipaddress

    return ipaddress.ip_network(f"{address}/32")


# -- load -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageAnswer:
    asked: float  # monotonic time the request was sent
    at: float  # monotonic time the answer came
    name: str  # the region asked for
    status: int  # HTTP status, 0 when the connection failed
    png: bool  # the body is a PNG image


class ImageLoad:
    """``threads`` clients asking for gbrowse_img, each request a region never asked before."""

    def __init__(self, master: GBrowseMaster, threads: int = 3, *, max_duration: float = 240.0) -> None:
        self.master = master
        self.threads = threads
        self.max_duration = max_duration
        self.answers: list[ImageAnswer] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def next_region(self) -> str:
        with self._lock:
            n = self._counter
            self._counter += 1
        chrom, length = CHROMOSOMES[n % len(CHROMOSOMES)]
        width = 20_000
        start = 1 + (n * 7_919) % (length - width)  # a prime stride: no region twice in a run
        return f"{chrom}:{start}..{start + width - 1 + n % 97}"

    def start(self) -> ImageLoad:
        started = time.monotonic()
        for n in range(self.threads):
            worker = threading.Thread(target=self._work, args=(started,), name=f"gbrowse_img-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _work(self, started: float) -> None:
        while not self._stop.is_set() and time.monotonic() - started < self.max_duration:
            name = self.next_region()
            asked = time.monotonic()
            try:
                status, body = self.master.get_image(name)
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
            with self._lock:
                self.answers.append(ImageAnswer(asked, time.monotonic(), name, status, body.startswith(b"\x89PNG")))

    def asked_since(self, when: float) -> list[ImageAnswer]:
        """Answers to requests sent after ``when``."""
        with self._lock:
            return [a for a in self.answers if a.asked > when]

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(90)

    def __enter__(self) -> ImageLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the whole farm ---------------------------------------------------------------


class FarmLab:
    """A GBrowse master, a moto server over HTTP, the slaves' subnet and a gbrowse_slave per instance.

    For the real-GBrowse test and the demo::

        with FarmLab(workdir, table=((0.0, 0, 0), (4.0, 2, 2))) as lab:
            with lab.balancer() as bal, ImageLoad(lab.master) as images:
                bal.wait_ready()
                lab.farm()                                # the renderers in renderfarm.conf
    """

    def __init__(self, workdir: str | os.PathLike[str], *, table: t.Sequence[tuple[float, int, int]], balancer_id: str = "gbrowse-farm") -> None:
        self.workdir = Path(workdir)
        self.table = tuple(table)
        self.balancer_id = balancer_id
        self.drain_time = 60  # seconds: longer than any image this master renders under the test's load
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FarmLab:
        from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import write_conf
        from ansible_collections.gmod.gbrowse_aws.tests.support.moto import MotoServer, slave_image
        from ansible_collections.gmod.gbrowse_aws.tests.support.staging import StagingSubnet

        try:
            self.subnet = self._stack.enter_context(StagingSubnet())
            self.moto = self._stack.enter_context(MotoServer(mode="process"))
            self.master = self._stack.enter_context(GBrowseMaster(renderfarm_fix=True))
            self.ec2 = self.moto.client()
            vpc = self.ec2.create_vpc(CidrBlock=f"{testhost.NET}.0.0/16")["Vpc"]["VpcId"]
            subnet_id = self.ec2.create_subnet(VpcId=vpc, CidrBlock=self.subnet.cidr)["Subnet"]["SubnetId"]
            self.conf = write_conf(
                self.workdir,
                status_url=self.master.status_url,
                image_id=slave_image(self.ec2),
                subnet=subnet_id,
                balancer_id=self.balancer_id,
                table=self.table,
                ready_timeout=2,  # minutes
                external_ip=self.subnet.gateway,
                extra_master={"renderfarm_conf": str(self.master.renderfarm_conf)},
                extra_slave={"drain_time": str(self.drain_time)},
            )
            self.slaves = self._stack.enter_context(GBrowseSlaves(self.ec2, self.subnet, self.balancer_id))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def balancer(self) -> t.Any:
        from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import BalancerProcess

        return BalancerProcess(self.conf, env=self.moto.environ())

    def farm(self) -> tuple[str, ...]:
        """The renderers GBrowse finds in its renderfarm.conf now."""
        from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import read_renderfarm

        return read_renderfarm(str(self.master.renderfarm_conf)).renderers

    def running(self) -> list[str]:
        """Instances still pending or running in moto."""
        found = self.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
        return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
