# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The real ``gbrowse_aws_balancer`` command as a child process, watched through sd_notify.

Used by the system tests and the demo::

    conf = write_conf(tmp, status_url=apache.status_url, image_id=ami, subnet=net.subnet_id, ...)
    with BalancerProcess(conf, env=moto.environ()) as bal:   # NOTIFY_SOCKET is ours
        bal.wait_ready()
        report = bal.next_report()                          # one --report line per poll
        bal.terminate()                                     # SIGTERM, waits for the clean-up

The process believes it runs under systemd: the test owns the notify socket,
so READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 are observed, not assumed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import read_renderfarm

DEFAULT_TABLE = ((0.0, 0, 0), (20.0, 1, 2), (100.0, 3, 4))


def balancer_command() -> list[str]:
    """The installed command (``make setup`` puts it beside the venv's python), else the module."""
    exe = Path(sys.executable).parent / "gbrowse_aws_balancer"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli"]


def write_conf(
    directory: str | os.PathLike[str],
    *,
    status_url: str,
    image_id: str,
    subnet: str | None = None,
    balancer_id: str = "test-balancer",
    table: t.Sequence[tuple[float, int, int]] = DEFAULT_TABLE,
    poll_interval: float = 0.03,
    ready_timeout: float = 0.5,
    external_ip: str = "127.0.0.1",
    instance_type: str = "m5.large c5.large",
    extra_master: t.Mapping[str, str] | None = None,
    extra_slave: t.Mapping[str, str] | None = None,
) -> Path:
    """An aws_balancer.conf for a test: renderfarm.conf beside it, no Apache reload."""
    directory = Path(directory)
    rows = "\n".join(f"{thr:<8} {lo:<3} {hi}" for thr, lo, hi in table)
    master = {
        "external_ip": external_ip,
        "poll_interval": str(poll_interval),
        "server_status_url": status_url,
        "balancer_id": balancer_id,
        "renderfarm_conf": str(directory / "renderfarm.conf"),
        "reload_command": "true",
        "status_timeout": "2",
        # These tests check the daemon's mechanics poll by poll; the adaptive
        # policy's windows are minutes long (test_balancer has its own test of it).
        "scaling_policy": "immediate",
        **(extra_master or {}),
    }
    slave = {
        "instance_type": instance_type,
        "spot_bid": "0.10",
        "ports": "8101",
        "region": "us-west-2",
        "image_id": image_id,
        "address": "private",
        "ready_timeout": str(ready_timeout),
        # The mechanics tests expect a scaled-in slave to go at once (the GBrowse farm test drains).
        "drain_time": "0",
        **({"subnet": subnet} if subnet else {}),
        **(extra_slave or {}),
    }
    text = "[LOAD TABLE]\n#req/s  min max\n" + rows + "\n\n[MASTER]\n"
    text += "".join(f"{k:<18}= {v}\n" for k, v in master.items())
    text += "\n[SLAVE]\n" + "".join(f"{k:<18}= {v}\n" for k, v in slave.items())
    path = directory / "aws_balancer.conf"
    path.write_text(text, encoding="utf-8")
    return path


class BalancerProcess:
    """``gbrowse_aws_balancer --conf CONF`` with our notify socket; stderr collected in a file."""

    def __init__(
        self,
        conf: str | os.PathLike[str],
        *,
        env: t.Mapping[str, str],
        args: t.Sequence[str] = ("--verbosity", "3"),
        watchdog_sec: float | None = 10.0,
    ) -> None:
        self.conf = Path(conf)
        self.env = dict(env)
        self.args = list(args)
        self.watchdog_sec = watchdog_sec
        self._dir = tempfile.mkdtemp(prefix="gbrowse-balancer-")
        self.log_path = Path(self._dir) / "balancer.log"
        self.report_path = Path(self._dir) / "report.jsonl"  # --report: one JSON line per poll
        self.socket_path = str(Path(self._dir) / "notify.sock")
        self.messages: list[tuple[float, str]] = []  # (monotonic time, one sd_notify line)
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    # -- life cycle -----------------------------------------------------------

    def start(self) -> BalancerProcess:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.socket_path)
        self._sock.settimeout(0.2)
        self._reader = threading.Thread(target=self._read, name="notify", daemon=True)
        self._reader.start()
        env = {**self.env, "NOTIFY_SOCKET": self.socket_path}
        if self.watchdog_sec:
            env["WATCHDOG_USEC"] = str(int(self.watchdog_sec * 1_000_000))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*balancer_command(), "--conf", str(self.conf), "--report", str(self.report_path), *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        # WATCHDOG_PID is unknown before the fork; the balancer accepts a missing one.
        return self

    def _read(self) -> None:
        sock = self._sock
        while sock is not None and sock.fileno() >= 0:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._cond:
                for line in data.decode("utf-8", "replace").splitlines():
                    self.messages.append((now, line))
                self._cond.notify_all()

    def signal(self, signum: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def terminate(self, timeout: float = 120.0) -> int:
        """SIGTERM and wait for the balancer's own clean-up; returns its exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as after a crash."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def wait(self, timeout: float) -> int:
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"balancer did not exit within {timeout} s; log:\n{self.log_tail()}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._reader is not None:
            self._reader.join(2)

    def __enter__(self) -> BalancerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observing ------------------------------------------------------------

    def log_tail(self, size: int = 6000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-size:]
        except OSError:
            return ""

    def lines(self, prefix: str) -> list[tuple[float, str]]:
        with self._cond:
            return [(at, line[len(prefix):]) for at, line in self.messages if line.startswith(prefix)]

    def _wait_for(self, predicate: t.Callable[[], t.Any], timeout: float, what: str) -> t.Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = predicate()
                if found:
                    return found
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"balancer exited ({self.proc.returncode}) waiting for {what}; log:\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout} s; log:\n{self.log_tail()}")
                self._cond.wait(min(left, 0.2))

    def wait_ready(self, timeout: float = 30.0) -> None:
        self._wait_for(lambda: any(line == "READY=1" for dummy, line in self.messages), timeout, "READY=1")

    def poll_statuses(self) -> list[tuple[float, str]]:
        """STATUS= lines of completed polls (the baseline line is not a poll)."""
        return [(at, s) for at, s in self.lines("STATUS=") if s.startswith("load ") or s.startswith("Poll failed")]

    def next_status(self, timeout: float = 30.0) -> str:
        """Wait for the next poll's STATUS= line and return it."""
        seen = len(self.poll_statuses())
        return self._wait_for(
            lambda: self.poll_statuses()[seen][1] if len(self.poll_statuses()) > seen else None,
            timeout,
            "poll status",
        )

    def reports(self) -> list[dict[str, t.Any]]:
        """The polls' reports so far (``--report``), each flattened by :func:`flat`."""
        try:
            text = self.report_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [flat(json.loads(line)) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def next_report(self, timeout: float = 30.0) -> dict[str, t.Any]:
        """Wait for the next poll's report and return it."""
        return self.wait_next_report(lambda report: True, timeout)

    def wait_next_report(self, predicate: t.Callable[[dict[str, t.Any]], bool], timeout: float = 60.0) -> dict[str, t.Any]:
        """Wait for a report from now on that satisfies ``predicate``."""
        seen = len(self.reports())
        return self._wait_for(
            lambda: next((r for r in self.reports()[seen:] if predicate(r)), None), timeout, "matching poll report"
        )

    def renderers(self) -> tuple[str, ...]:
        farm = read_renderfarm(str(self.conf.parent / "renderfarm.conf"))
        return farm.renderers


def flat(report: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A ``--report`` line with the fleet's counts at the top, and ``holding``: why the fleet is held, or None."""
    counts = {k: v for k, v in report["fleet"].items() if k != "instances"}
    return {**report, **counts, "holding": report["publish_error"]}
