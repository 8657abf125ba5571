# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Is a render slave ready? A GBrowse render slave answers HEAD / with 403.

Checks run concurrently with a short timeout each, so one slave that accepts
a connection and never answers costs the poll ``timeout`` seconds, not minutes.
"""

from __future__ import annotations

import http.client
import socket
import typing as t
from concurrent.futures import ThreadPoolExecutor

READY_STATUS = 403  # what GBrowse's render slave answers to a bare HEAD /


def check_slave(address: str, port: int, timeout: float = 2.0) -> bool:
    """True when ``http://address:port/`` answers HEAD with 403 within ``timeout`` seconds."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("HEAD", "/")
        return conn.getresponse().status == READY_STATUS
    except (OSError, http.client.HTTPException, socket.timeout):
        return False
    finally:
        conn.close()


def check_slaves(
    targets: t.Mapping[str, str],
    port: int,
    timeout: float = 2.0,
    check: t.Callable[[str, int, float], bool] = check_slave,
    max_workers: int = 32,
) -> dict[str, bool]:
    """Check many slaves at once: ``{id: address}`` -> ``{id: ready}``.

    The whole call takes about ``timeout`` seconds however many slaves hang.
    """
    if not targets:
        return {}
    workers = max(1, min(max_workers, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ready") as pool:
        futures = {key: pool.submit(check, address, port, timeout) for key, address in targets.items()}
        return {key: future.result() for key, future in futures.items()}
