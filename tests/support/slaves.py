# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render slave stand-ins: a tiny HTTP server wherever moto says a slave runs.

A GBrowse render slave answers a bare ``HEAD /`` or ``GET /`` with 403; the
balancer takes that as "ready". :class:`SlaveStandIns` watches a moto server
and, for every running instance, listens on the instance's private IP (inside
127.100.0.0/16, see ``tests/support/moto.py``: ``make_network``) on the slave ports::

    with SlaveStandIns(moto.url, balancer_id="test", behaviour="ready") as slaves:
        ...                                     # launch through the balancer
        slaves.wait_listening(3, timeout=5)     # three stand-ins answering
        slaves.set_behaviour(instance_id, "hang")
        slaves.hits[instance_id]                # requests (or connections) seen

Behaviours (per instance; ``behaviour`` may be a name or a callable taking the
moto instance dict and returning a name):

- ``"ready"``: answers 403, like a slave that is up.
- ``"500"``: answers 500 (a broken slave).
- ``"hang"``: accepts the connection and never answers.
- ``"refuse"``: no listener: connections are refused (a slave still booting).

``boot_delay`` (seconds) keeps an instance "refuse" for that long after it was
first seen running, as a real slave takes time to boot.

A background thread syncs every ``interval`` seconds (0.2 by default); a
stand-in is closed as soon as its instance is no longer running. Only
addresses in 127.0.0.0/8 are ever bound; other instances are listed in
``skipped``. ``stop()`` (or leaving the ``with`` block) closes every socket and
joins every thread, also on failure.
"""

from __future__ import annotations

import collections
import ipaddress
import socket
import threading
import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import LoopbackServer, QuietHandler
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import boto3_client

BEHAVIOURS = ("ready", "500", "hang", "refuse")
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

Behaviour = t.Union[str, t.Callable[[t.Mapping[str, t.Any]], str]]


class _HTTPStandIn(LoopbackServer):
    """An HTTP listener answering every request with one status."""

    def __init__(self, address: str, port: int, status: int, on_hit: t.Callable[[], None]) -> None:
        self.address, self.status, self.on_hit = (address, port), status, on_hit
        self.thread_name = f"stand-in {address}:{port}"
        self.start()

    def make_handler(self) -> type[QuietHandler]:
        stand_in = self

        class Handler(QuietHandler):
            server_version = "gbrowse-slave-stand-in"

            def _answer(self) -> None:
                stand_in.on_hit()
                data = b"Forbidden\n" if stand_in.status == 403 else b"Internal Server Error\n"
                self.reply(stand_in.status, [("Content-Type", "text/plain")], data)

            do_HEAD = do_GET = do_POST = _answer  # noqa: N815

        return Handler

    def close(self) -> None:
        self.stop()


class _HangingStandIn:
    """Accepts connections and holds them open without a word."""

    def __init__(self, address: str, port: int, on_hit: t.Callable[[], None]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._on_hit = on_hit
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"hanging stand-in {address}:{port}")
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self._on_hit()
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


class SlaveStandIns:
    """Stand-ins for the running instances a moto server reports. See the module doc."""

    def __init__(
        self,
        client_or_url: t.Any,
        balancer_id: str | None = None,
        port: int | t.Sequence[int] = 8101,
        behaviour: Behaviour = "ready",
        *,
        interval: float = 0.2,
        boot_delay: float = 0.0,
        tag_key: str = "gbrowse-aws:balancer-id",
    ) -> None:
        self.client = boto3_client(client_or_url) if isinstance(client_or_url, str) else client_or_url
        self.balancer_id = balancer_id
        self.ports = (port,) if isinstance(port, int) else tuple(port)
        self.behaviour = behaviour
        self.interval = interval
        self.boot_delay = boot_delay
        self.tag_key = tag_key
        #: Requests answered (or connections held, for "hang") per instance id.
        self.hits: collections.Counter[str] = collections.Counter()
        #: Instances seen running whose address is not on loopback: never bound.
        self.skipped: set[str] = set()
        #: The last error of the background sync (a moto hiccup, a busy address), or None.
        self.last_error: str | None = None
        self._overrides: dict[str, str] = {}
        self._first_seen: dict[str, float] = {}
        self._servers: dict[str, tuple[str, str, list[t.Any]]] = {}  # id -> (address, behaviour, listeners)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------

    def start(self) -> SlaveStandIns:
        self._thread = threading.Thread(target=self._run, daemon=True, name="slave stand-ins")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            for instance_id in list(self._servers):
                self._close(instance_id)

    def __enter__(self) -> SlaveStandIns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_behaviour(self, instance_id: str, behaviour: str) -> None:
        """Change one instance's behaviour; takes effect at once if it is running."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; one of {BEHAVIOURS}")
        with self._lock:
            self._overrides[instance_id] = behaviour
            if instance_id in self._servers:
                address = self._servers[instance_id][0]
                self._close(instance_id)
                self._open(instance_id, address, behaviour)

    # -- what is up -------------------------------------------------------

    def listening(self) -> dict[str, tuple[str, str]]:
        """Instances with a stand-in: id -> (address, behaviour); "refuse" ones included."""
        with self._lock:
            return {i: (entry[0], entry[1]) for i, entry in self._servers.items()}

    def answering(self) -> dict[str, str]:
        """Instances whose stand-in answers 403: id -> address."""
        return {i: addr for i, (addr, beh) in self.listening().items() if beh == "ready"}

    def wait_listening(
        self, count: int, timeout: float = 10.0, behaviour: str | None = "ready"
    ) -> dict[str, tuple[str, str]]:
        """Wait until at least ``count`` stand-ins (of ``behaviour``, None: any) are up."""
        deadline = time.monotonic() + timeout
        while True:
            up = {i: v for i, v in self.listening().items() if behaviour is None or v[1] == behaviour}
            if len(up) >= count:
                return up
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(up)} of {count} stand-ins up after {timeout}s (last error: {self.last_error})"
                )
            time.sleep(0.05)

    # -- the sync loop ----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sync()
            self._stop.wait(self.interval)

    def sync(self) -> None:
        """One round: open stand-ins for new running instances, close the gone ones."""
        try:
            running = self._running()
        except Exception as exc:  # moto restarting, being reset...: try again next round
            self.last_error = f"describe: {exc}"
            return
        now = time.monotonic()
        with self._lock:
            for instance_id in list(self._servers):
                if instance_id not in running:
                    self._close(instance_id)
                    self._first_seen.pop(instance_id, None)
            for instance_id, raw in running.items():
                address = raw.get("PrivateIpAddress")
                if not address or ipaddress.ip_address(address) not in _LOOPBACK:
                    self.skipped.add(instance_id)
                    continue
                first = self._first_seen.setdefault(instance_id, now)
                wanted = self._behaviour_of(instance_id, raw)
                if wanted != "refuse" and now - first < self.boot_delay:
                    wanted = "refuse"
                current = self._servers.get(instance_id)
                if current is not None and current[1] == wanted and current[0] == address:
                    continue
                if current is not None:
                    self._close(instance_id)
                self._open(instance_id, address, wanted)

    def _running(self) -> dict[str, t.Mapping[str, t.Any]]:
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        if self.balancer_id is not None:
            filters.append({"Name": f"tag:{self.tag_key}", "Values": [self.balancer_id]})
        running = {}
        for page in self.client.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for raw in reservation["Instances"]:
                    running[raw["InstanceId"]] = raw
        return running

    def _behaviour_of(self, instance_id: str, raw: t.Mapping[str, t.Any]) -> str:
        if instance_id in self._overrides:
            return self._overrides[instance_id]
        behaviour = self.behaviour(raw) if callable(self.behaviour) else self.behaviour
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; one of {BEHAVIOURS}")
        return behaviour

    def _open(self, instance_id: str, address: str, behaviour: str) -> None:
        def hit() -> None:
            self.hits[instance_id] += 1

        listeners: list[t.Any] = []
        try:
            for port in self.ports:
                if behaviour == "ready":
                    listeners.append(_HTTPStandIn(address, port, 403, hit))
                elif behaviour == "500":
                    listeners.append(_HTTPStandIn(address, port, 500, hit))
                elif behaviour == "hang":
                    listeners.append(_HangingStandIn(address, port, hit))
        except OSError as exc:  # address still busy: next round tries again
            self.last_error = f"bind {address}: {exc}"
            for listener in listeners:
                listener.close()
            return
        self._servers[instance_id] = (address, behaviour, listeners)

    def _close(self, instance_id: str) -> None:
        listeners = self._servers.pop(instance_id)[2]
        for listener in listeners:
            listener.close()
