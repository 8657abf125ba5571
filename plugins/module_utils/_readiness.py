# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Is a render slave ready? A GBrowse render slave answers HEAD / with 403.

Checks run concurrently with a short timeout each, so one slave that accepts
a connection and never answers costs the poll ``timeout`` seconds, not minutes.
A check tells a slave that is down (refuses, resets, answers something else)
from one that is merely slow (no answer in time): the slave's accept loop
answers the check, so a slave busy rendering can miss one without being gone.
"""

from __future__ import annotations

import enum
import http.client
import socket
import typing as t
from concurrent.futures import ThreadPoolExecutor

READY_STATUS = 403  # what GBrowse's render slave answers to a bare HEAD /


class Probe(str, enum.Enum):
    """The outcome of one readiness check."""

    READY = "ready"  # answered 403, as a GBrowse render slave does
    SLOW = "slow"  # connected or connecting, but no answer within the timeout
    DOWN = "down"  # refused, reset, unreachable, or answered something else


def check_slave(address: str, port: int, timeout: float = 2.0) -> Probe:
    """Check ``http://address:port/`` with HEAD: READY on 403 within ``timeout`` seconds, else SLOW or DOWN."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("HEAD", "/")
        return Probe.READY if conn.getresponse().status == READY_STATUS else Probe.DOWN
    except (socket.timeout, TimeoutError):
        return Probe.SLOW
    except (OSError, http.client.HTTPException):
        return Probe.DOWN
    finally:
        conn.close()


def check_slaves(
    targets: t.Mapping[str, str],
    port: int,
    timeout: float = 2.0,
    check: t.Callable[[str, int, float], Probe] = check_slave,
    max_workers: int = 32,
) -> dict[str, Probe]:
    """Check many slaves at once: ``{id: address}`` -> ``{id: Probe}``.

    The whole call takes about ``timeout`` seconds however many slaves hang.
    """
    if not targets:
        return {}
    workers = max(1, min(max_workers, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ready") as pool:
        futures = {key: pool.submit(check, address, port, timeout) for key, address in targets.items()}
        return {key: future.result() for key, future in futures.items()}
