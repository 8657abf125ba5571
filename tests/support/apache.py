# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A private Apache httpd with mod_status, and load generators to drive it.

Used by the system tests, the demo and the benchmarks::

    with PrivateApache() as apache:             # 127.0.0.1:<free port>
        with FixedRateLoad(apache.url + "small.txt", rate=50) as load:
            ...
            true_rate = load.rate_between(t0, t1)
        ab_burst(apache.url + "small.txt", seconds=2)

Everything listens on 127.0.0.1 only. Every process started here is stopped by
its PID (``stop()``, context-manager exit, fixture teardown), also on failure.
Load generators stop by themselves after ``max_duration`` seconds.

Apache facts these helpers rely on (checked by tests/system/test_load_apache.py):

- ``apache2 -k restart`` (SIGHUP) is the restart that zeroes the mod_status
  counters and moves RestartTime; ``-k graceful`` (SIGUSR1) keeps both.
- Every request, a server-status fetch included, adds one to Total Accesses
  when it is logged, after its response was sent: a status page never counts
  itself, the next one does.
"""

from __future__ import annotations

import bisect
import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import typing as t
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_DIRS = (
    "/usr/lib/apache2/modules",  # Debian, Ubuntu
    "/usr/lib64/httpd/modules",  # Fedora, RHEL
    "/usr/lib/httpd/modules",
)
# mod_unixd and mod_log_config are compiled into Debian's apache2: loading
# them again is a start-up error.
MODULES = ("mpm_event", "authz_core", "authz_host", "status", "mime", "dir")

SMALL_FILE = "small.txt"
SMALL_BODY = b"GBrowse render slave test page\n" * 4  # 128 bytes


# Proxy variables in the environment must never divert loopback test traffic.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApacheUnavailable(RuntimeError):
    """Apache cannot run here at all (binary or modules missing, cannot bind)."""


class ApacheError(RuntimeError):
    """The private Apache failed to start, restart or stop; carries its error log."""


def find_apache() -> str:
    for name in ("apache2", "httpd"):
        for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
    raise ApacheUnavailable(
        "Apache httpd not found (apache2 or httpd on PATH or in /usr/sbin): "
        "install the apache2 and apache2-utils packages"
    )


def find_modules_dir() -> Path:
    for directory in MODULE_DIRS:
        if Path(directory, "mod_status.so").exists():
            return Path(directory)
    raise ApacheUnavailable(f"mod_status.so not found in any of {', '.join(MODULE_DIRS)}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (Apache start retries if it is taken)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    except OSError as exc:
        raise ApacheUnavailable(f"cannot bind a TCP port on {host}: {exc}") from exc


def _run_as() -> tuple[str, str] | None:
    """User and group for Apache's children when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for user in ("nobody", "www-data", "daemon"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = f"#{entry.pw_gid}"
        return user, group
    raise ApacheUnavailable("running as root and no unprivileged user (nobody, www-data) for Apache's children")


class PrivateApache:
    """An Apache httpd of our own: own ServerRoot in a temp dir, 127.0.0.1:<free port>.

    ``start()`` returns once ``/server-status?auto`` answers. The server runs
    in the foreground of its own session (``-D FOREGROUND``), so the PID in
    its pid file is our child's and ``stop()`` can always reap it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        max_request_workers: int = 150,
        start_timeout: float = 30.0,
        extended_status: bool = True,
        extra_modules: t.Sequence[str] = (),
        extra_conf: str = "",
        keep_root: bool = False,
        run_as: tuple[str, str] | None = None,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"PrivateApache listens on loopback only, not {host}")
        self.host = host
        self.max_request_workers = max_request_workers
        self.start_timeout = start_timeout
        self.extended_status = extended_status
        self.extra_modules = tuple(extra_modules)
        self.extra_conf = extra_conf
        self.keep_root = keep_root
        self.run_as = run_as  # (user, group) of the children when root; None: nobody's
        self.binary = find_apache()
        self.modules_dir = find_modules_dir()
        self.root: Path | None = None
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------
    @property
    def url(self) -> str:
        """The docroot URL, ending in ``/``."""
        self._need_port()
        return f"http://{self.host}:{self.port}/"

    @property
    def status_url(self) -> str:
        """The plain server-status URL (the balancer adds ``?auto``)."""
        return self.url + "server-status"

    @property
    def small_file_url(self) -> str:
        return self.url + SMALL_FILE

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def _need_port(self) -> None:
        if not self.port:
            raise ApacheError("PrivateApache has no port yet: call start() first")

    # -- files -----------------------------------------------------------
    @property
    def conf_path(self) -> Path:
        return self._root() / "conf" / "httpd.conf"

    @property
    def error_log_path(self) -> Path:
        return self._root() / "logs" / "error.log"

    @property
    def pid_file(self) -> Path:
        return self._root() / "run" / "apache2.pid"

    def _root(self) -> Path:
        if self.root is None:
            raise ApacheError("PrivateApache has no ServerRoot yet: call start() first")
        return self.root

    def error_log(self, tail: int = 40) -> str:
        text = ""
        if self.root is not None:
            for path in (self.error_log_path, self._root() / "logs" / "stdout.log"):
                try:
                    text += path.read_text(errors="replace")
                except OSError:
                    pass
        return "\n".join(text.splitlines()[-tail:])

    def _make_root(self) -> Path:
        # mkdtemp makes a 0700 directory; Apache's children run as nobody
        # when we are root and must traverse it to read the docroot.
        root = Path(tempfile.mkdtemp(prefix="gbrowse-apache-"))
        for sub in ("conf", "logs", "run", "htdocs"):
            (root / sub).mkdir()
        root.chmod(0o755)
        (root / "htdocs").chmod(0o755)
        index = root / "htdocs" / "index.html"
        index.write_text("<html><body><h1>GBrowse master (test)</h1></body></html>\n")
        small = root / "htdocs" / SMALL_FILE
        small.write_bytes(SMALL_BODY)
        for path in (index, small):
            path.chmod(0o644)
        return root

    def _write_conf(self) -> None:
        root = self._root()
        run_as = (self.run_as if os.geteuid() == 0 else None) if self.run_as else _run_as()
        user_lines = f"User {run_as[0]}\nGroup {run_as[1]}\n" if run_as else ""
        load_lines = "".join(
            f"LoadModule {name}_module {self.modules_dir}/mod_{name}.so\n" for name in (*MODULES, *self.extra_modules)
        )
        threads = 25
        server_limit = max(2, -(-self.max_request_workers // threads))
        conf = textwrap.dedent(
            """\
            # Written by tests/support/apache.py: a private Apache for tests.
            ServerRoot "{root}"
            ServerName {host}
            Listen {host}:{port}
            PidFile "{root}/run/apache2.pid"
            DefaultRuntimeDir "{root}/run"
            ErrorLog "{root}/logs/error.log"
            LogLevel warn
            {load_lines}{user_lines}
            TypesConfig /etc/mime.types
            DocumentRoot "{root}/htdocs"
            <Directory "{root}/htdocs">
                Require all granted
            </Directory>
            DirectoryIndex index.html

            # Enough workers for a few hundred req/s with keep-alive clients.
            StartServers 2
            ServerLimit {server_limit}
            ThreadsPerChild {threads}
            MaxRequestWorkers {max_workers}
            MinSpareThreads 25
            MaxSpareThreads {max_spare}
            KeepAlive On
            MaxKeepAliveRequests 1000
            KeepAliveTimeout 5
            Timeout 30

            ExtendedStatus {extended_status}
            <Location /server-status>
                SetHandler server-status
                Require local
            </Location>
            """
        ).format(
            root=root,
            host=self.host,
            port=self.port,
            load_lines=load_lines,
            user_lines=user_lines,
            server_limit=server_limit,
            threads=threads,
            max_workers=server_limit * threads,
            max_spare=max(75, server_limit * threads),
            extended_status="On" if self.extended_status else "Off",
        )
        if self.extra_conf:
            conf += "\n# extra_conf\n" + textwrap.dedent(self.extra_conf).format(root=root) + "\n"
        self.conf_path.write_text(conf)

    # -- life cycle ------------------------------------------------------
    def start(self) -> PrivateApache:
        if self.running:
            return self
        if not os.path.exists("/etc/mime.types"):
            raise ApacheUnavailable("/etc/mime.types missing (package media-types)")
        if self.root is None:
            self.root = self._make_root()
        last_error = ""
        for _attempt in range(3):
            self.port = free_port(self.host)
            self._write_conf()
            self.error_log_path.write_text("")
            try:
                self._spawn_and_wait()
                return self
            except ApacheError as exc:
                last_error = str(exc)
                if "Address already in use" not in last_error:
                    break
        self.stop()
        raise ApacheError(last_error)

    def _spawn_and_wait(self) -> None:
        root = self._root()
        with open(root / "logs" / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-d", str(root), "-f", str(self.conf_path), "-D", "FOREGROUND"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C goes to pytest only
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"},
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise ApacheError(f"apache2 exited with status {code} at start-up:\n{self.error_log()}")
            if self._status_answers():
                return
            time.sleep(0.05)
        self._terminate()
        raise ApacheError(
            f"apache2 did not answer {self.status_url}?auto within {self.start_timeout:.0f} s:\n{self.error_log()}"
        )

    def _status_answers(self) -> bool:
        return self.fetch_status_text(timeout=2.0) is not None

    def fetch_status_text(self, timeout: float = 5.0) -> str | None:
        """The raw ``?auto`` body, or None when the server does not answer."""
        try:
            with _NO_PROXY.open(self.status_url + "?auto", timeout=timeout) as resp:
                body: bytes = resp.read()
        except (OSError, http.client.HTTPException):
            return None
        text = body.decode("latin-1")
        # BusyWorkers is there with and without ExtendedStatus.
        return text if "BusyWorkers:" in text else None

    def status_fields(self, timeout: float = 5.0) -> dict[str, str]:
        """``Key: value`` pairs of ``?auto`` (independent of the product parser)."""
        text = self.fetch_status_text(timeout)
        if text is None:
            raise ApacheError(f"{self.status_url}?auto did not answer:\n{self.error_log()}")
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                fields[key] = value
        return fields

    def _signal(self, signum: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise ApacheError("the private Apache is not running")
        os.kill(self._pid_from_file(), signum)

    def _pid_from_file(self) -> int:
        """The PID in Apache's pid file when it is our child's, else our child's."""
        if self._proc is None:
            raise ApacheError("the private Apache is not running")
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return self._proc.pid
        return pid if pid == self._proc.pid else self._proc.pid

    def _wait_new_generation(self, before: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise ApacheError(f"apache2 exited during restart:\n{self.error_log()}")
            text = self.fetch_status_text(timeout=2.0)
            if text is not None:
                fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
                if fields.get("ParentServerConfigGeneration") != before:
                    return
            time.sleep(0.05)
        raise ApacheError(f"apache2 did not come back within {timeout:.0f} s:\n{self.error_log()}")

    def restart(self, timeout: float = 30.0) -> None:
        """A real restart (``apache2 -k restart`` = SIGHUP): counters to zero, new RestartTime.

        Returns once the new generation answers server-status.
        """
        before = self.status_fields().get("ParentServerConfigGeneration")
        self._signal(signal.SIGHUP)
        self._wait_new_generation(before, timeout)

    def graceful(self, timeout: float = 30.0) -> None:
        """``apache2 -k graceful`` (SIGUSR1), as the balancer does after a farm change."""
        before = self.status_fields().get("ParentServerConfigGeneration")
        self._signal(signal.SIGUSR1)
        self._wait_new_generation(before, timeout)

    def _terminate(self, timeout: float = 15.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(self._pid_from_file(), signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # Children left behind by a killed parent are in its process group,
        # which is our own session: take them down by that group id.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc = None

    def stop(self) -> None:
        """SIGTERM to the pid from the pid file, wait, SIGKILL if needed; remove the temp root."""
        try:
            self._terminate()
        finally:
            if self.root is not None and not self.keep_root:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def __enter__(self) -> PrivateApache:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- load generators -----------------------------------------------------------


class FixedRateLoad:
    """GET ``url`` at a steady ``rate`` per second from ``threads`` keep-alive connections.

    Request *i* is due at ``start + i / rate``; each thread takes the next due
    slot, sleeps until then and sends. A thread that falls behind sends at once,
    so a short stall is caught up; ``completions`` keeps the monotonic time of
    every completed 2xx answer so a test can compute the true rate of any window
    with ``rate_between``. Stops by itself after ``max_duration`` seconds.
    """

    def __init__(
        self,
        url: str,
        rate: float,
        threads: int = 4,
        *,
        max_duration: float = 120.0,
        timeout: float = 10.0,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, not {rate}")
        match = re.match(r"^http://([^/:]+):(\d+)(/.*)?$", url)
        if match is None:
            raise ValueError(f"FixedRateLoad needs a plain http://HOST:PORT/PATH URL, not {url!r}")
        self.host, self.port = match.group(1), int(match.group(2))
        if not self.host.startswith("127."):
            raise ValueError(f"FixedRateLoad only drives loopback servers, not {self.host}")
        self.path = match.group(3) or "/"
        self.url = url
        self.rate = float(rate)
        self.threads = max(1, int(threads))
        self.max_duration = max_duration
        self.timeout = timeout
        self.clock = clock
        self.errors = 0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._completions: list[float] = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    @property
    def completed(self) -> int:
        return len(self._completions)

    @property
    def completions(self) -> list[float]:
        """Sorted completion times (monotonic seconds) of every successful request."""
        with self._lock:
            return sorted(self._completions)

    def count_between(self, start: float, end: float) -> int:
        """Requests completed in ``(start, end]``."""
        times = self.completions
        return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)

    def rate_between(self, start: float, end: float) -> float:
        """The true rate (completed requests per second) in ``(start, end]``."""
        if end <= start:
            raise ValueError("empty window")
        return self.count_between(start, end) / (end - start)

    def start(self) -> FixedRateLoad:
        if self._workers:
            raise RuntimeError("FixedRateLoad already started")
        self.started_at = self.clock()
        for n in range(self.threads):
            worker = threading.Thread(target=self._work, name=f"fixed-rate-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _due(self) -> float | None:
        with self._lock:
            i = self._next
            self._next += 1
        if self.started_at is None:
            return None
        due = self.started_at + i / self.rate
        if due - self.started_at > self.max_duration:
            return None
        return due

    def _work(self) -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            while not self._stop.is_set():
                due = self._due()
                if due is None:
                    return
                delay = due - self.clock()
                if delay > 0 and self._stop.wait(delay):
                    return
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                try:
                    conn.request("GET", self.path)
                    resp = conn.getresponse()
                    resp.read()
                    ok = 200 <= resp.status < 300
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    # Keep-alive connection closed by the server, or the
                    # server is gone: a fresh connection for the next slot.
                    ok = False
                    if conn is not None:
                        conn.close()
                    conn = None
                now = self.clock()
                with self._lock:
                    if ok:
                        self._completions.append(now)
                    else:
                        self.errors += 1
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """Stop sending and wait for in-flight requests; idempotent."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        if self.stopped_at is None and self.started_at is not None:
            self.stopped_at = self.clock()

    def __enter__(self) -> FixedRateLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class AbResult:
    requests: int  # complete requests
    failed: int
    seconds: float
    per_second: float


def ab_burst(
    url: str,
    seconds: float = 2.0,
    concurrency: int = 8,
    *,
    max_requests: int = 5_000_000,
    keepalive: bool = True,
    ab: str | None = None,
) -> AbResult:
    """``ab -q [-k] -t SECONDS -n MAX -c N URL``: a short burst as fast as the server goes.

    ``-t`` alone caps ab at 50000 requests; ``-n`` after it lifts the cap.
    ``-k`` (keep-alive, the default here) roughly doubles the rate.
    The ab process is killed (by PID, through subprocess) if it overruns.
    """
    if not re.match(r"^http://127\.\d+\.\d+\.\d+:\d+/", url):
        raise ValueError(f"ab_burst only drives loopback servers, not {url!r}")
    binary = ab or shutil.which("ab") or "/usr/bin/ab"
    if not os.access(binary, os.X_OK):
        raise ApacheUnavailable("ab not found: install apache2-utils")
    secs = max(1, round(seconds))
    cmd = [binary, "-q", *(["-k"] if keepalive else []), "-t", str(secs), "-n", str(max_requests), "-c", str(concurrency), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")

    def number(label: str) -> float:
        match = re.search(rf"^{label}:\s+([\d.]+)", proc.stdout, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"ab output has no {label!r}:\n{proc.stdout}")
        return float(match.group(1))

    return AbResult(
        requests=int(number("Complete requests")),
        failed=int(number("Failed requests")),
        seconds=number("Time taken for tests"),
        per_second=number("Requests per second"),
    )


# -- pytest fixtures (tests/system/conftest.py imports these) ---------------------


@pytest.fixture
def private_apache() -> t.Iterator[PrivateApache]:
    """A started PrivateApache for one test; stopped by PID afterwards, also on failure."""
    apache = PrivateApache()
    with apache:
        yield apache


@pytest.fixture
def fixed_rate_load() -> t.Iterator[t.Callable[..., FixedRateLoad]]:
    """A factory of started FixedRateLoad generators, all stopped after the test."""
    loads: list[FixedRateLoad] = []

    def make(url: str, rate: float, **kwargs: t.Any) -> FixedRateLoad:
        load = FixedRateLoad(url, rate, **kwargs)
        loads.append(load)
        return load.start()

    yield make
    for load in loads:
        load.stop()
