# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Readiness across polls: who joins the render farm, who leaves it, and when."""

from __future__ import annotations

import socket
import threading

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import GENERATION_TAG, Instance
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import FleetView, Master, Readiness, described
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._readiness import Probe, check_slave

R, S, D = Probe.READY, Probe.SLOW, Probe.DOWN
GONE = None  # the instance is no longer running


def _instance(state: str = "running") -> Instance:
    return Instance("i-1", state, 0.0, "10.0.0.1", None, "vpc-1", "subnet-1", "m5.large", "spot")


@pytest.mark.parametrize(
    "misses_allowed, probes, in_farm",
    [
        # slow: stays for misses_allowed - 1 polls, leaves at the misses_allowed-th slow check in a row
        (3, [R, S, S, S], [True, True, True, False]),
        (3, [R, S, S, R, S, S, R], [True, True, True, True, True, True, True]),  # misses must be in a row
        (3, [R, S, S, R, S, S, S], [True, True, True, True, True, True, False]),
        (1, [R, S], [True, False]),
        (2, [R, S, S, R], [True, True, False, True]),  # back when it answers again
        # down (refused, wrong answer): leaves at once, however many misses are allowed
        (3, [R, D], [True, False]),
        (3, [R, S, D], [True, True, False]),
        # not running any more: leaves at once
        (3, [R, GONE], [True, False]),
        (3, [R, S, S, GONE, R], [True, True, True, False, True]),
        # a slave that was never ready does not become ready by being slow
        (3, [S, S, R], [False, False, True]),
        (3, [D, R], [False, True]),
    ],
)
def test_a_ready_slave_leaves_at_once_when_down_and_after_misses_when_slow(misses_allowed, probes, in_farm):
    queue = list(probes)
    readiness = Readiness(check=lambda targets, port, timeout: {iid: queue[0] for iid in targets})
    seen = []
    for now, probe in enumerate(probes):
        instance = _instance("running" if probe is not GONE else "shutting-down")
        readiness.update([instance], {"i-1": "10.0.0.1"}, 8101, float(now), misses_allowed)
        queue.pop(0)
        seen.append("i-1" in readiness.ready)
        assert set(readiness.misses) <= readiness.ready  # misses are counted only for slaves in the farm
    assert seen == in_farm


def test_gained_and_lost_are_reported_once():
    probes = [R, S, S, S, R]
    readiness = Readiness(check=lambda targets, port, timeout: {iid: probes[0] for iid in targets})
    changes = []
    while probes:
        changes.append(readiness.update([_instance()], {"i-1": "10.0.0.1"}, 8101, 0.0, 3))
        probes.pop(0)
    assert changes == [(["i-1"], []), ([], []), ([], []), ([], ["i-1"]), (["i-1"], [])]


def _server(answer: bytes | None) -> socket.socket:
    """A loopback listener that answers every request with ``answer`` (None: accepts, never answers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, dummy = listener.accept()
            except OSError:
                return
            if answer is not None:
                conn.recv(4096)
                conn.sendall(answer)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.mark.parametrize(
    "answer, probe",
    [
        (b"HTTP/1.0 403 REQUEST DATASOURCE:\r\n\r\n", Probe.READY),  # what gbrowse_slave answers
        (b"HTTP/1.0 200 OK\r\n\r\n", Probe.DOWN),  # something else listens there
        (b"garbage\r\n\r\n", Probe.DOWN),
        (None, Probe.SLOW),  # accepted, no answer in time: busy
    ],
)
def test_check_slave_tells_slow_from_down(answer, probe):
    listener = _server(answer)
    try:
        assert check_slave("127.0.0.1", listener.getsockname()[1], timeout=0.5) is probe
    finally:
        listener.close()


def test_check_slave_refused_is_down():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        assert check_slave("127.0.0.1", port, timeout=0.5) is Probe.DOWN


def test_each_slave_carries_the_data_generation_of_its_tag_or_of_its_launch():
    """Described slaves: their GENERATION_TAG (None when untagged); launched, not yet described: the launch's."""
    tagged = Instance("i-1", "running", 0.0, "10.0.0.1", None, "vpc-1", "subnet-1", "m5.large", "spot", {GENERATION_TAG: "g1"})
    untagged = Instance("i-2", "running", 0.0, "10.0.0.2", None, "vpc-1", "subnet-1", "m5.large", "spot")

    class Described:
        def describe_fleet(self):
            return [tagged, untagged]

    conf = parse_conf("[LOAD TABLE]\n1 0 1\n[SLAVE]\nimage_id = ami-1\n", "test.conf")
    ready = Readiness(check=lambda targets, port, timeout: {i: Probe.READY for i in targets})
    view = FleetView(Described(), conf, Master(), readiness=ready)  # type: ignore[arg-type]
    view.launched_now(["i-3"], 10.0, "g2")
    fleet = view.observe(11.0)
    assert {s.id: s.generation for s in fleet.slaves} == {"i-1": "g1", "i-2": None, "i-3": "g2"}
    assert [i["generation"] for i in described(fleet)] == ["g1", None]
