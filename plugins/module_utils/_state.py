# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The daemon's state file and ``gbrowse_aws_balancer status``, which reads it.

Each poll the daemon rewrites the file atomically (``_atomic.write_atomic``,
mode 0644: any user may run ``status``) with its view now: the load, the
wanted band and why, each slave, the recent actions with their reasons, the
recent errors and the spend. Where the file is: one rule,
:meth:`._conf.BalancerConf.resolved_state_file`, so ``status --conf FILE``
finds what the daemon of that conf writes.

``status`` is a monitoring check with Nagios' exit codes: 0 OK, 1 WARNING
(running, but the fleet is held or the last poll had errors), 2 CRITICAL (not
running: no state file, the daemon's pid is gone, it is stopping, or its state
is older than :data:`STALE_POLLS` poll intervals), 3 UNKNOWN (the conf or the
state file cannot be read). Tests: tests/unit/plugins/module_utils/test_state.py.
"""

from __future__ import annotations

# This file is a command's front (``status``): it prints and exits like any command does.
# pylint: disable=ansible-bad-function

import argparse
import json
import math
import os
import socket
import sys
import time
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import write_atomic

VERSION = 1
#: A state older than this many poll intervals means the daemon is stuck (or gone).
STALE_POLLS = 3
#: Recent actions and errors kept in the state file.
RECENT_EVENTS = 20
RECENT_ERRORS = 10

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

#: EC2 states in which a slave is billed.
BILLED = ("running",)


class StateError(Exception):
    """The state file cannot be used; the message is one line naming the file."""


# --------------------------------------------------------------------------
# what the daemon writes


@dataclass
class Spend:
    """Dollars per hour now and spent since the daemon started (per hour held until the next poll)."""

    started: float
    per_hour: float = 0.0
    basis: str = "spot_bid"  # "spot price" when every billed slave's price is known, "spot_bid" (an upper bound) else
    total: float = 0.0
    _since: float | None = None

    def update(self, now: float, per_hour: float, basis: str) -> None:
        """The rate from the last poll ran until ``now``; from now on it is ``per_hour``."""
        if self._since is not None and now > self._since:
            self.total += self.per_hour * (now - self._since) / 3600
        self._since = now
        self.per_hour, self.basis = per_hour, basis

    def as_dict(self) -> dict[str, t.Any]:
        note = {
            "spot price": "the slaves' spot prices",
            "spot_bid": "spot_bid per slave: an upper bound (the spot price is not known)",
            "mixed": "the spot price where known, else spot_bid: an upper bound",
        }[self.basis]
        return {
            "per_hour": round(self.per_hour, 6),
            "basis": self.basis,
            "note": note,
            "since_start": round(self.total, 6),
            "since": self.started,
        }


def spend_rate(slaves: t.Iterable[t.Mapping[str, t.Any]], spot_bid: float) -> tuple[float, str]:
    """($/h of the billed slaves, basis): each slave's ``spot_price`` when known, else ``spot_bid``."""
    billed = [s for s in slaves if s.get("state") in BILLED]
    known = [s for s in billed if s.get("spot_price") is not None]
    rate = sum(float(s["spot_price"]) for s in known) + spot_bid * (len(billed) - len(known))
    basis = "spot price" if len(known) == len(billed) and billed else "spot_bid" if not known else "mixed"
    return rate, basis


def slave_rows(
    instances: t.Iterable[t.Any],
    slave_states: t.Mapping[str, str],
    addresses: t.Mapping[str, str | None],
    farm: t.Collection[str],
    now: float,
) -> list[dict[str, t.Any]]:
    """One row per described slave: id, type, zone, address, EC2 and slave state, age, spot price, in the farm."""
    return [
        {
            "id": i.id,
            "type": i.instance_type,
            "zone": i.availability_zone,
            "address": addresses.get(i.id),
            "state": i.state,
            "slave_state": slave_states.get(i.id, "going"),
            "age": max(0.0, round(now - i.launched, 1)) if i.launched else None,
            "spot_price": getattr(i, "spot_price", None),  # the adapter does not know it yet
            "in_farm": i.id in farm,
            "launched": i.launched,
        }
        for i in instances
    ]


def write_state(path: str, state: t.Mapping[str, t.Any]) -> None:
    """Replace the state file atomically; a new one is 0644 (status works for any user)."""
    write_atomic(path, json.dumps(state, sort_keys=True, indent=1) + "\n", mode=0o644)


# --------------------------------------------------------------------------
# what status reads


MAX_STATE_BYTES = 4 * 1024 * 1024


def read_state(path: str) -> dict[str, t.Any]:
    """The state file's contents; FileNotFoundError when there is none, StateError when it is unusable."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"{path}: too large for a balancer state file")
    try:
        state = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{path}: not a balancer state file (not JSON: {exc})") from None
    problem = _shape_problem(state)
    if problem:
        raise StateError(f"{path}: not a balancer state file ({problem})")
    return state


def _number(value: t.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shape_problem(state: t.Any) -> str | None:
    if not isinstance(state, dict):
        return "not a JSON object"
    if state.get("version") != VERSION:
        return f"version {state.get('version')!r}, expected {VERSION}"
    checks = (
        ("pid", isinstance(state.get("pid"), int) and not isinstance(state.get("pid"), bool) and state["pid"] > 0),
        ("time", _number(state.get("time"))),
        ("poll_interval", _number(state.get("poll_interval")) and state["poll_interval"] > 0),
        ("phase", state.get("phase") in ("starting", "running", "stopping", "stopped")),
        ("slaves", isinstance(state.get("slaves"), list) and all(isinstance(s, dict) for s in state["slaves"])),
        ("actions", isinstance(state.get("actions", []), list) and all(isinstance(e, dict) for e in state.get("actions", []))),
        ("errors", isinstance(state.get("errors", []), list) and all(isinstance(e, dict) for e in state.get("errors", []))),
        ("load", isinstance(state.get("load"), dict)),
        ("band", isinstance(state.get("band"), dict)),
        ("spend", isinstance(state.get("spend"), dict)),
    )
    bad = [name for name, ok in checks if not ok]
    return f"bad or missing {', '.join(bad)}" if bad else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def check(state: t.Mapping[str, t.Any], now: float, alive: t.Callable[[int], bool] = pid_alive) -> tuple[int, str]:
    """(exit code, one line): is the daemon running, and is its view fresh and healthy?"""
    age = now - state["time"]
    limit = STALE_POLLS * state["poll_interval"]
    pid = state["pid"]
    if state["phase"] == "stopped":
        return CRITICAL, f"not running: stopped {_ago(age)} ago"
    if not alive(pid):
        return CRITICAL, f"not running: pid {pid} is gone (last state {_ago(age)} ago)"
    if age > limit:
        return CRITICAL, f"stale: the last state is {_ago(age)} old, more than {STALE_POLLS} polls of {_ago(state['poll_interval'])} (pid {pid} hung?)"
    if state["phase"] == "stopping":
        return CRITICAL, f"stopping (pid {pid}): terminating the fleet"
    if state.get("holding"):
        return WARNING, f"running (pid {pid}) but HOLDING the fleet: {state['holding']}"
    if state["band"].get("held"):
        return WARNING, f"running (pid {pid}) but holding the fleet: {state['band'].get('why') or 'no load figure'}"
    if state.get("last_errors"):
        return WARNING, f"running (pid {pid}); the last poll had errors: {'; '.join(map(str, state['last_errors']))}"
    what = "starting (no poll yet)" if state["phase"] == "starting" else "running"
    return OK, f"{what} (pid {pid}), state {_ago(age)} old"


# --------------------------------------------------------------------------
# showing


def _ago(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _clock(epoch: t.Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) if _number(epoch) else "?"


def _num(value: t.Any, fmt: str = ".2f", none: str = "n/a") -> str:
    return format(value, fmt) if _number(value) else none


def _table(rows: t.Sequence[t.Sequence[str]]) -> list[str]:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def render(state: t.Mapping[str, t.Any], code: int, message: str, now: float) -> str:
    """The human view: a headline (as a monitoring check prints it), then a short table."""
    load, band, spend = state["load"], state["band"], state["spend"]
    out = [f"gbrowse_aws_balancer {NAMES[code]}: {message}"]
    out.append(
        f"balancer  {state.get('balancer_id', '?')}, conf {state.get('conf', '?')}, "
        f"up since {_clock(state.get('started'))} UTC, polls every {_ago(state['poll_interval'])}"
        f"{' (dry run)' if state.get('dry_run') else ''}"
    )
    out.append(
        f"load      {_num(load.get('value'))} ({load.get('signal', '?')}; measured {_num(load.get('measured'))} req/s, "
        f"Apache lifetime {_num(load.get('apache_lifetime'))} req/s)"
    )
    out.append(
        f"wanted    {band.get('min', '?')}-{band.get('max', '?')} slaves{' (held)' if band.get('held') else ''}: "
        f"{band.get('why') or 'no decision yet'}"
    )
    if state.get("holding"):
        out.append(f"HOLDING   no launches, no terminations: {state['holding']}")
    out.append(
        f"spend     ${_num(spend.get('per_hour'), '.3f')}/h ({spend.get('note', spend.get('basis', '?'))}), "
        f"${_num(spend.get('since_start'), '.2f')} since {_clock(spend.get('since'))} UTC"
    )
    slaves = state["slaves"]
    counts: dict[str, int] = {}
    for slave in slaves:
        counts[str(slave.get("slave_state"))] = counts.get(str(slave.get("slave_state")), 0) + 1
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "none"
    out.append(f"slaves    {summary}")
    if slaves:
        rows = [("ID", "TYPE", "ZONE", "ADDRESS", "STATE", "AGE", "SPOT $/h", "IN FARM")]
        for s in slaves:
            rows.append(
                (
                    str(s.get("id")),
                    str(s.get("type") or "-"),
                    str(s.get("zone") or "-"),
                    str(s.get("address") or "-"),
                    f"{s.get('slave_state')} ({s.get('state')})",
                    _ago(s["age"]) if _number(s.get("age")) else "-",
                    _num(s.get("spot_price"), ".4f", "-"),
                    "yes" if s.get("in_farm") else "no",
                )
            )
        out += _table(rows)
    actions = state.get("actions") or []
    out.append("recent actions" + ("" if actions else ": none"))
    for event in actions[-10:]:
        out.append(
            f"  {_clock(event.get('time'))}  {event.get('id')} {event.get('event')}"
            f" ({event.get('address') or 'no address'}): {event.get('reason')}"
        )
    errors = state.get("errors") or []
    out.append("recent errors" + ("" if errors else ": none"))
    for error in errors[-5:]:
        out.append(f"  {_clock(error.get('time'))}  {error.get('message')}")
    return "\n".join(out)


# --------------------------------------------------------------------------
# the command


class _Parser(argparse.ArgumentParser):
    """Usage errors exit UNKNOWN (3), not argparse's 2 (CRITICAL to a monitoring system)."""

    def error(self, message: str) -> t.NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(UNKNOWN)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="gbrowse_aws_balancer status",
        description="Show what the running balancer sees and does (from its state file). Exit codes as a "
        "monitoring check: 0 OK, 1 WARNING (fleet held, errors), 2 CRITICAL (not running, stale), 3 UNKNOWN.",
    )
    p.add_argument("--conf", metavar="FILE", help="the balancer's configuration (default: as the balancer's)")
    p.add_argument("--json", action="store_true", help="print the state as JSON, with the check's status")
    return p


def main(argv: t.Sequence[str], default_conf: t.Callable[[], str], now: t.Callable[[], float] = time.time) -> int:
    """``gbrowse_aws_balancer status [--conf FILE] [--json]``."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, load_conf

    args = build_parser().parse_args(list(argv))
    try:
        conf = load_conf(args.conf or default_conf())
    except ConfError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return UNKNOWN
    path = conf.resolved_state_file(socket.gethostname())
    try:
        state = read_state(path)
    except FileNotFoundError:
        message = f"not running: no state file {path} (the balancer writes it at start and every poll)"
        if args.json:
            print(json.dumps({"status": NAMES[CRITICAL], "code": CRITICAL, "message": message, "state_file": path}))
        else:
            print(f"gbrowse_aws_balancer {NAMES[CRITICAL]}: {message}")
        return CRITICAL
    except StateError as exc:
        print(f"gbrowse_aws_balancer {NAMES[UNKNOWN]}: {exc}", file=sys.stderr)
        return UNKNOWN
    code, message = check(state, now())
    if args.json:
        print(json.dumps({"status": NAMES[code], "code": code, "message": message, "state_file": path, **state}, sort_keys=True))
    else:
        print(render(state, code, message, now()))
    return code
