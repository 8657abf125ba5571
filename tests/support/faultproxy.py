# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A fault-injecting HTTP proxy in front of moto: EC2 as it behaves on a bad day.

Real EC2 throttles busy accounts (HTTP 503 ``RequestLimitExceeded``) and now
and then fails with a 5xx; moto never does. :class:`FaultProxy` listens on
127.0.0.1, forwards requests to a loopback upstream (the moto server) and
answers a seeded, reproducible fraction of the EC2 API calls with an error
instead::

    with FaultProxy(moto.url, fail_ratio=0.3, seed=7) as proxy:
        client = make_client("us-west-2", endpoint_url=proxy.url, ...)
        ...
        proxy.forwarded, proxy.failed          # Counters by action name
        proxy.fail_next(2, "throttle")         # the next two EC2 calls fail

Fault kinds (``faults``, chosen at random among those given):

- ``"throttle"``: 503 with EC2's XML error body, code ``RequestLimitExceeded``.
- ``"500"``: 500 ``InternalError``.
- ``"unavailable"``: 503 ``Unavailable``.
- ``"reset"``: the connection is closed without an answer.

Only EC2 query-API calls (those with an ``Action``) are ever failed, and only
the ones in ``actions`` when given; moto's own ``/moto-api/`` always passes.
A failed call never reaches moto, so nothing happens twice behind the
client's back. Context manager; ``stop()`` closes the listener and joins its
thread, also on failure.
"""

from __future__ import annotations

import collections
import random
import threading
import typing as t

from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import RESET, EC2Proxy

FAULTS = ("throttle", "500", "unavailable", "reset")
_ERRORS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "500": (500, "InternalError", "An internal error has occurred."),
    "unavailable": (503, "Unavailable", "The server is overloaded and can't handle the request."),
}


class FaultProxy(EC2Proxy):
    """See the module doc."""

    thread_name = "fault proxy"

    def __init__(
        self,
        upstream_url: str,
        fail_ratio: float = 0.3,
        seed: int | None = None,
        faults: t.Sequence[str] = ("throttle",),
        actions: t.Iterable[str] | None = None,
    ) -> None:
        super().__init__(upstream_url)
        unknown = set(faults) - set(FAULTS)
        if unknown or not faults:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose among {FAULTS}")
        self.fail_ratio = fail_ratio
        self.faults = tuple(faults)
        self.actions = None if actions is None else frozenset(actions)
        #: EC2 calls passed to moto / answered with a fault, by action.
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self._random = random.Random(seed)
        self._forced: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()

    def fail_next(self, count: int = 1, fault: str = "throttle") -> None:
        """Fail the next ``count`` eligible calls with ``fault``, whatever the ratio."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._forced.extend([fault] * count)

    def refuse(self, action: str | None) -> tuple[int, str, str] | str | None:
        if action is None or (self.actions is not None and action not in self.actions):
            return None
        with self._lock:
            if self._forced:
                fault = self._forced.popleft()
            elif self._random.random() < self.fail_ratio:
                fault = self._random.choice(self.faults)
            else:
                fault = None
            (self.failed if fault else self.forwarded)[action] += 1
            return None if fault is None else RESET if fault == "reset" else _ERRORS[fault]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"forwarded": sum(self.forwarded.values()), "failed": sum(self.failed.values())}
