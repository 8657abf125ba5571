# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``gbrowse_aws_balancer simulate``: replay traffic through the balancer's own decision code.

The load comes from Apache access logs (common or combined format, plain or
gzip), a CSV of requests per second, or the balancer's own history
(``history_file``, or ``--report``: JSON lines with each poll's requests). It is replayed through the same
:class:`~._controller.Controller` and :func:`~._decision.plan` the daemon
runs, against a model of EC2 (:class:`Model`): boot times, launch failures,
slaves that never answer, spot reclaims. See docs/simulate.md.

Definitions (the figures of issue 13, so runs compare):

- *true load*: requests served over the trailing 60 s, per second;
- *under-provisioned*: time with fewer ready slaves than the table's min for
  the true load;
- *flap*: a slave the balancer terminated less than 10 minutes after
  launching it (reclaims and replacements of never-ready slaves excluded);
- *oracle*: the table's min for the true load ready at every moment, each
  slave launched one (mean) boot time ahead; a slave is kept through a dip
  when that costs less than launching it again;
- billing: per second from the end of EC2 pending, at least 60 s.

Pure Python, no numpy: matplotlib is imported only for ``--plot``.
"""

from __future__ import annotations

# This file is a command's front: it prints and exits like any command does.
# pylint: disable=ansible-bad-function

import argparse
import bisect
import calendar
import collections
import glob
import gzip
import itertools
import json
import math
import operator
import os
import random
import re
import sys
import typing as t
from dataclasses import asdict, dataclass, field

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import (
    JOIN_INTERVAL,
    SAMPLE_INTERVAL,
    Controller,
    Policy,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    FleetSnapshot,
    LoadRow,
    PollSettings,
    Slave,
    SlaveState,
    counted,
    decide,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import alive as count_alive

#: Longest trace replayed, seconds (per-second lists: 92 days is ~8 M entries).
MAX_SPAN = 92 * 86400
#: Above this fraction of unreadable lines, an input is refused.
MAX_BAD_FRACTION = 0.01
#: A log line may be this many seconds older than an earlier line (Apache logs
#: a request when it ends, stamped when it started); more is an unsorted log.
LOG_DISORDER = 600
FLAP_AGE = 600.0
TRUE_LOAD_WINDOW = 60


class InputError(Exception):
    """An input that cannot be replayed; the message names FILE or FILE:LINE."""


# --------------------------------------------------------------------------
# input


@dataclass
class Trace:
    """Requests per second from ``start`` (epoch seconds)."""

    start: int
    counts: list[int]
    lines: int = 0
    bad: int = 0
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> int:
        return len(self.counts)


_MONTHS = {
    m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
}


def _log_time(stamp: str) -> int:
    """``10/Oct/2000:13:55:36 -0700`` -> epoch seconds; ValueError when it is not one."""
    if len(stamp) != 26 or stamp[2] != "/" or stamp[6] != "/" or stamp[11] != ":" or stamp[20] != " ":
        raise ValueError(stamp)
    day, month, year = int(stamp[0:2]), _MONTHS[stamp[3:6]], int(stamp[7:11])
    hour, minute, sec = int(stamp[12:14]), int(stamp[15:17]), int(stamp[18:20])
    sign = -1 if stamp[21] == "-" else 1 if stamp[21] == "+" else None
    if sign is None or not (1 <= day <= 31 and hour < 24 and minute < 60 and sec < 61):
        raise ValueError(stamp)
    offset = sign * (int(stamp[22:24]) * 3600 + int(stamp[24:26]) * 60)
    return calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset


def _open(path: str) -> t.BinaryIO:
    handle = open(path, "rb")  # pylint: disable=consider-using-with
    magic = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
    if magic == b"\x1f\x8b":
        return t.cast(t.BinaryIO, gzip.GzipFile(fileobj=handle, mode="rb"))
    return handle


def expand(patterns: t.Sequence[str]) -> list[str]:
    """File names from names and globs, each once; InputError for a name that matches nothing."""
    paths: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matched:
            raise InputError(f"{pattern}: no such file")
        for path in matched:
            if os.path.realpath(path) not in (os.path.realpath(p) for p in paths):
                paths.append(path)
    return paths


def _is_csv(first: bytes) -> bool:
    text = first.strip().lower()
    return b"[" not in text and (b"," in text or text.replace(b".", b"").isdigit() or text.startswith(b"time"))


def read_trace(patterns: t.Sequence[str]) -> Trace:
    """Per-second request counts from access logs and/or CSV files (kinds told apart by content)."""
    per_second: dict[int, int] = {}
    lines = bad = 0
    sources = expand(patterns)
    warnings: list[str] = []
    for path in sources:
        try:
            with _open(path) as handle:
                first = handle.readline()
                rest = handle
                if _is_history(first):
                    n, b, msgs = _read_history(path, first, rest, per_second)
                elif _is_csv(first):
                    n, b, msgs = _read_csv(path, first, rest, per_second)
                else:
                    n, b, msgs = _read_log(path, first, rest, per_second)
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
        except EOFError:
            raise InputError(f"{path}: truncated gzip file") from None
        if n and b == n:
            raise InputError("\n".join(msgs[:5] + [f"{path}: no line could be read as a request"]))
        if n and b > max(0, n * MAX_BAD_FRACTION):
            raise InputError(
                "\n".join(msgs[:5] + [f"{path}: {b} of {n} lines unreadable (more than 1 %): not replayed"])
            )
        if b:
            warnings += msgs[:3] + [f"{path}: {b} of {n} lines skipped"]
        lines += n
        bad += b
    if not per_second or not any(per_second.values()):
        raise InputError(f"{', '.join(sources)}: no requests to replay (empty input)")
    start, end = min(per_second), max(per_second)
    if end - start + 1 > MAX_SPAN:
        raise InputError(
            f"{', '.join(sources)}: the requests span {(end - start) / 86400:.0f} days; "
            f"at most {MAX_SPAN // 86400} days are replayed at once"
        )
    counts = [0] * (end - start + 1)
    for second, n in per_second.items():
        counts[second - start] += n
    return Trace(start=start, counts=counts, lines=lines, bad=bad, sources=sources, warnings=warnings)


# The time of a common/combined line (the first " [" of the line), and of
# the balancer's own server-status reads, which are not load.
_STAMP = re.compile(rb' \[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "')
_STATUS = re.compile(rb' \[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "[A-Z]+ /server-status')
# The fast path's search: any 26 bytes between " [" and '] "', checked against
# _STAMP's form once per distinct stamp (a block with one that is not goes the
# slow way). Three times faster than _STAMP on a block: the engine need not
# test each byte of a candidate against a class.
_FAST = re.compile(rb'(?s) \[(.{26})\] "')
# _STAMP's form, in parts: (dd/Mon/yyyy:HH:MM, SS, " +zzzz"), one stamp a line
# (26 bytes without a newline then a newline: a match is one whole line).
_STAMP_PARTS = re.compile(rb"(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d):([0-5]\d|60)( [+-]\d{4})\n")
_BLOCK = 1 << 22
_MINUTES: dict[bytes, int] = {}  # "dd/Mon/yyyy:HH:MM +zzzz" -> epoch seconds


def _read_log(path: str, first: bytes, rest: t.BinaryIO, per_second: dict[int, int]) -> tuple[int, int, list[str]]:
    """Count a log's lines per second: a regular expression per 4 MB block, line by line only
    for a block with something wrong in it (to name the line)."""
    cache: dict[bytes, int] = {}
    state = {"number": 0, "bad": 0, "latest": -(2**62)}
    msgs: list[str] = []
    block = first
    while True:
        more = rest.read(_BLOCK)
        block += more
        if more and not block.endswith(b"\n"):
            block += rest.readline()
        if not block:
            break
        counted = _fast_block(block, cache, state, per_second)
        if counted is None:
            _slow_block(path, block, cache, state, per_second, msgs)
        else:
            state["number"] += counted
        if not more:
            break
        block = b""
    return state["number"], state["bad"], msgs


def _fast_block(block: bytes, cache: dict[bytes, int], state: dict[str, int], per_second: dict[int, int]) -> int | None:
    """Count a block whose every line is a good, ordered log line: its number of lines; None (nothing
    counted) otherwise.

    Per line only C loops (the search, the counter, the grouping of equal
    neighbours); Python works once per run of lines with the same stamp.
    """
    stamps = _FAST.findall(block)
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if len(stamps) != lines:
        return None
    if not stamps:
        return lines
    counted = collections.Counter(stamps)
    new = list(set(counted).difference(cache))  # (not keys() - keys(): that walks all of the cache)
    if new:
        # The new stamps as lines of one text, split by one search: every line must be a
        # stamp of _STAMP's form (so none has a newline in it, and the parts align).
        parts = _STAMP_PARTS.findall(b"\n".join(new) + b"\n")
        if len(parts) != len(new):
            return None
        minutes = _MINUTES
        # One calendar conversion a minute (and zone), not one a second.
        keys = list(map(operator.add, map(operator.itemgetter(0), parts), map(operator.itemgetter(2), parts)))
        for minute in set(keys).difference(minutes):
            try:
                minutes[minute] = _log_time(minute[:17].decode("ascii") + ":00" + minute[17:].decode("ascii"))
            except (ValueError, KeyError):
                return None
        cache.update(
            zip(new, map(operator.add, map(minutes.__getitem__, keys), map(int, map(operator.itemgetter(1), parts))))
        )
    # The order check on runs of equal stamps: the same answer as line by line.
    times = list(map(cache.__getitem__, map(operator.itemgetter(0), itertools.groupby(stamps))))
    running = list(itertools.accumulate(times, max, initial=state["latest"]))[1:]
    if min(map(operator.sub, times, running)) < -LOG_DISORDER:
        return None
    state["latest"] = running[-1]
    if b"/server-status" in block:
        counted.subtract(_STATUS.findall(block))
    for key, n in counted.items():
        second = cache[key]
        per_second[second] = per_second.get(second, 0) + n
    return lines


def _slow_block(
    path: str, block: bytes, cache: dict[bytes, int], state: dict[str, int], per_second: dict[int, int], msgs: list[str]
) -> None:
    for line in block.splitlines():
        state["number"] += 1
        number = state["number"]
        match = _STAMP.search(line)
        if not match:
            if line.strip():
                state["bad"] += 1
                if len(msgs) < 5:
                    msgs.append(f"{path}:{number}: not an access log line (common or combined format)")
            continue
        key = match.group(1)
        when = cache.get(key)
        if when is None:
            try:
                when = cache[key] = _log_time(key.decode("ascii"))
            except (ValueError, KeyError):
                state["bad"] += 1
                if len(msgs) < 5:
                    msgs.append(f"{path}:{number}: unreadable time [{key.decode('ascii', 'replace')}]")
                continue
        if when < state["latest"] - LOG_DISORDER:
            raise InputError(
                f"{path}:{number}: time {_show_time(when)} is before {_show_time(state['latest'])} of an earlier line: "
                "the log is not in time order (concatenated logs? give each file separately)"
            )
        state["latest"] = max(state["latest"], when)
        if _STATUS.search(line):
            continue  # the balancer's own status reads
        per_second[when] = per_second.get(when, 0) + 1


def _chain(first: bytes, rest: t.Iterable[bytes]) -> t.Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _show_time(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _csv_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        import datetime

        value = datetime.datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()


def _read_csv(
    path: str, first: bytes, rest: t.Iterable[bytes], per_second: dict[int, int]
) -> tuple[int, int, list[str]]:
    """``time,requests`` rows (time in epoch seconds or ISO 8601), or one count per line (second 0, 1...)."""
    number = bad = 0
    msgs: list[str] = []
    previous: float | None = None
    implicit = 0
    for raw in _chain(first, rest):
        number += 1
        text = raw.decode("utf-8", "replace").strip()
        if not text or text.startswith("#"):
            continue
        if number == 1 and not text[0].isdigit():
            continue  # a header
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) == 1:
                when, count = float(implicit), float(parts[0])
                implicit += 1
            elif len(parts) == 2:
                when, count = _csv_time(parts[0]), float(parts[1])
            else:
                raise ValueError
            if count < 0 or not math.isfinite(count) or not math.isfinite(when) or count != int(count):
                raise ValueError
        except ValueError:
            bad += 1
            if len(msgs) < 5:
                msgs.append(
                    f"{path}:{number}: expected 'time,requests' (a whole number of requests), got {text[:60]!r}"
                )
            continue
        if previous is not None and when <= previous:
            raise InputError(
                f"{path}:{number}: time {parts[0]} is not after the previous row's: the rows must be in time order"
            )
        previous = when
        second = int(when)
        per_second[second] = per_second.get(second, 0) + int(count)
    return number, bad, msgs


def _is_history(first: bytes) -> bool:
    return first.lstrip().startswith(b"{")


def _read_history(
    path: str, first: bytes, rest: t.Iterable[bytes], per_second: dict[int, int]
) -> tuple[int, int, list[str]]:
    """The balancer's history (or ``--report``) lines: each poll's ``requests`` spread evenly over its ``seconds``.

    A poll without a count (the first after a start, Apache unreadable) adds nothing.
    """
    number = bad = 0
    msgs: list[str] = []
    for raw in _chain(first, rest):
        number += 1
        text = raw.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
            end, requests, seconds = float(record["time"]), record.get("requests"), float(record.get("seconds") or 0)
            if requests is not None and (int(requests) != requests or requests < 0 or not math.isfinite(end)):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
            if len(msgs) < 5:
                msgs.append(f"{path}:{number}: expected a balancer history line (JSON with time, requests, seconds)")
            continue
        if requests is None or not 0 < seconds <= MAX_SPAN:
            continue
        last_second = int(end)
        first_second = min(int(end - seconds) + 1, last_second)
        span = max(1, last_second - first_second + 1)
        share, extra = divmod(int(requests), span)
        for offset in range(span):
            second = first_second + offset
            per_second[second] = per_second.get(second, 0) + share + (1 if offset < extra else 0)
    return number, bad, msgs


# --------------------------------------------------------------------------
# the EC2 model


@dataclass(frozen=True)
class Model:
    """What the simulated EC2 does. Defaults: see docs/simulate.md for the sources.

    ``boot_min``..``boot_max``: seconds from the launch call until the slave
    answers (uniform; issue 13's 60-240 s, EC2 pending plus the slave's boot).
    ``pending``: seconds of EC2 pending (not billed) at the start of that.
    ``launch_failure``: chance a launch call gets no capacity (retried next poll).
    ``never_ready``: chance a slave never answers (replaced after ready_timeout).
    ``reclaims_per_month``: chance a slave running for a month is reclaimed
    (AWS Spot Instance Advisor's lowest band, "<5 %").
    """

    boot_min: float = 60.0
    boot_max: float = 240.0
    pending: float = 15.0
    launch_failure: float = 0.01
    never_ready: float = 0.01
    reclaims_per_month: float = 0.05
    seed: int = 1

    @property
    def reclaim_rate(self) -> float:
        """Reclaims per slave-second."""
        if self.reclaims_per_month <= 0:
            return 0.0
        return -math.log(1 - min(self.reclaims_per_month, 0.999999)) / (730 * 3600)


@dataclass
class _SimSlave:
    id: str
    launched: float
    running: float  # end of pending: billing starts
    answers: float | None  # None: never answers
    reclaim: float
    ready: float | None = None
    left: float | None = None  # left the farm to drain (drain_time): no longer serves
    ended: float | None = None
    why: str = ""  # balancer | unready | reclaim | end


@dataclass
class Result:
    """The figures of one replay."""

    name: str
    seconds: int
    slave_hours: float
    dollars: float
    under_provisioned: float  # fraction of the time
    flaps_per_day: float
    launches_per_day: float
    oracle_slave_hours: float
    reclaims: int = 0
    launch_failures: int = 0
    series: dict[str, list[float]] | None = None

    @property
    def vs_oracle(self) -> float:
        return self.slave_hours / self.oracle_slave_hours if self.oracle_slave_hours else float("inf")

    def as_dict(self) -> dict[str, t.Any]:
        data = {k: v for k, v in asdict(self).items() if k != "series"}
        data["vs_oracle"] = None if math.isinf(self.vs_oracle) else round(self.vs_oracle, 4)
        return data


def true_load(counts: t.Sequence[int]) -> list[float]:
    """Requests over the trailing 60 s, divided by 60, at each second."""
    out = [0.0] * len(counts)
    window = 0
    for i, n in enumerate(counts):
        window += n
        if i >= TRUE_LOAD_WINDOW:
            window -= counts[i - TRUE_LOAD_WINDOW]
        out[i] = window / TRUE_LOAD_WINDOW
    return out


def needed(load: t.Sequence[float], table: t.Sequence[LoadRow]) -> list[int]:
    """The table's min for each second's load."""
    rows = sorted(table, key=lambda r: r.threshold)
    thresholds = [r.threshold for r in rows]
    mins = [0] + [r.min for r in rows]
    return [mins[bisect.bisect_right(thresholds, value)] for value in load]


def oracle_seconds(need: t.Sequence[int], overhead: float, merge: bool = True) -> float:
    """Billed slave-seconds of the oracle for per-second needs.

    Level k's slave runs while need >= k, started ``overhead`` seconds (boot
    after pending) early; kept through a gap shorter than ``overhead``
    (cheaper than relaunching) unless ``merge`` is False (the literal
    reading: exactly the min at every moment); billed at least 60 s a run.
    """
    total = 0.0
    starts: dict[int, int] = {}  # level -> start of its current run
    ends: dict[int, int] = {}  # level -> end of its previous run (pending merge)
    runs: dict[int, int] = {}  # level -> start of the run being merged into
    previous = 0

    def close(level: int, start: int, end: int) -> float:
        return max(60.0, end - start + overhead)

    for second, n in enumerate(list(need) + [0]):
        if n > previous:
            for level in range(previous + 1, n + 1):
                if merge and level in ends and second - ends[level] < overhead:
                    starts[level] = runs[level]  # keep the slave through the gap
                    del ends[level]
                else:
                    if level in ends:
                        total += close(level, runs[level], ends.pop(level))
                    starts[level] = second
        elif n < previous:
            for level in range(n + 1, previous + 1):
                runs[level] = starts.pop(level)
                ends[level] = second
        previous = n
    for level, end in ends.items():
        total += close(level, runs[level], end)
    return total


def simulate(
    trace: Trace,
    table: t.Sequence[LoadRow],
    policy: Policy,
    *,
    poll_interval: float = 30.0,
    signal: str = "rate",
    model: Model | None = None,
    max_launch: int | None = None,
    ready_timeout: float = 300.0,
    price: float = 0.08,
    name: str = "",
    keep_series: bool = False,
    join_between_polls: bool = True,
    drain_time: float = 0.0,
) -> Result:
    """Replay ``trace`` through the controller and the daemon's poll decision (:func:`._decision.decide`)
    against ``model``. ``join_between_polls``: a slave joins the farm within JOIN_INTERVAL s of answering,
    as the daemon does (False: at the next poll, as it did before)."""
    model = model or Model()
    if signal not in ("rate", "reqpersec"):
        raise InputError(f"load_signal = {signal} cannot be simulated from request counts (rate or reqpersec can)")
    rng = random.Random(model.seed)
    counts = trace.counts
    seconds = len(counts)
    prefix = [0] * (seconds + 1)
    running_total = 0
    for i, n in enumerate(counts):
        running_total += n
        prefix[i + 1] = running_total

    controller = Controller(table, policy)
    settings = PollSettings(max_launch=max_launch, drain_time=drain_time)
    draining: dict[str, float] = {}
    step = SAMPLE_INTERVAL if policy.samples_between_polls else poll_interval
    step = min(step, poll_interval)
    fleet: list[_SimSlave] = []
    done: list[_SimSlave] = []
    launch_failures = 0
    serial = 0
    rate_reclaim = model.reclaim_rate
    series: dict[str, list[float]] = {"time": [], "measured": [], "min": [], "max": [], "ready": [], "booting": []}

    # Sample times: every ``step`` s; polls every ``poll_interval`` s. Time is
    # the end of a second: at time s, counts[0..s-1] have been served.
    last_sample = 0.0
    alive_count = 0
    controller.observe(0.0, None)  # the baseline: no rate yet
    next_poll = poll_interval
    now = step
    while now <= seconds:
        served = prefix[int(now)] - prefix[int(last_sample)]
        interval = now - last_sample
        if signal == "rate":
            value = served / interval
        else:
            value = prefix[int(now)] / now  # Apache's lifetime average since the trace began
        controller.observe(now, value, interval)
        last_sample = now
        due = now + 1e-9 >= next_poll
        if due or controller.wants_more(now, alive_count):
            if due:
                next_poll += poll_interval
            # The fleet at this poll, as FleetView.observe() would see it.
            alive: list[_SimSlave] = []
            for s in fleet:
                if s.reclaim <= now:
                    s.ended, s.why = s.reclaim, "reclaim"
                    done.append(s)
                    continue
                if s.ready is None and s.answers is not None and s.answers <= now:
                    # Joins at the poll after it answers, or (as the daemon does) within seconds.
                    s.ready = min(now, s.answers + JOIN_INTERVAL) if join_between_polls else now
                alive.append(s)
            expired = {s.id for s in alive if s.ready is None and now - s.launched > ready_timeout}
            snapshot = FleetSnapshot(
                slaves=tuple(
                    Slave(
                        s.id,
                        (
                            SlaveState.GOING
                            if s.id in expired
                            else SlaveState.READY
                            if s.ready is not None
                            else SlaveState.PENDING if now < s.running else SlaveState.BOOTING
                        ),
                        s.launched,
                    )
                    for s in alive
                ),
                addresses={s.id: s.id for s in alive},
                expired=tuple(sorted(expired)),
            )
            decision = controller.decide(now, count_alive(counted(snapshot, draining)))
            actions = decide(snapshot, decision.band, settings, now, draining)
            draining = dict(actions.draining)
            for s in alive:
                if s.id in draining and s.left is None:
                    s.left = now  # out of the farm: no longer serves, still billed
            if actions.terminate:
                going = set(actions.terminate)
                for s in alive:
                    if s.id in going:
                        s.ended, s.why = now, "unready" if s.id in expired else "balancer"
                        done.append(s)
                alive = [s for s in alive if s.ended is None]
            if actions.launch:
                if rng.random() < model.launch_failure:
                    launch_failures += 1
                else:
                    for dummy in range(actions.launch):
                        serial += 1
                        boot = rng.uniform(model.boot_min, model.boot_max)
                        answers = None if rng.random() < model.never_ready else now + boot
                        life = rng.expovariate(rate_reclaim) if rate_reclaim > 0 else math.inf
                        running = now + min(model.pending, boot)
                        alive.append(_SimSlave(f"i-{serial:08x}", now, running, answers, running + life))
            fleet = alive
            alive_count = sum(1 for s in alive if s.id not in draining)
            if keep_series:
                series["time"].append(now)
                series["measured"].append(decision.estimate if decision.estimate is not None else float("nan"))
                series["min"].append(decision.band.min)
                series["max"].append(decision.band.max)
                series["ready"].append(sum(1 for s in alive if s.ready is not None))
                series["booting"].append(sum(1 for s in alive if s.ready is None))
        now += step
    for s in fleet:
        s.ended, s.why = float(seconds), "end"
        done.append(s)

    # Figures.
    load = true_load(counts)
    need = needed(load, table)
    ready_delta = [0] * (seconds + 2)
    billed = 0.0
    flaps = reclaims = 0
    for s in done:
        end = t.cast(float, s.ended)
        if end > s.running:
            billed += max(60.0, end - s.running)
        served_until = end if s.left is None else min(end, s.left)
        if s.ready is not None and served_until > s.ready:
            ready_delta[min(seconds, math.ceil(s.ready))] += 1
            ready_delta[min(seconds, math.ceil(served_until))] -= 1
        if s.why == "balancer" and end - s.launched < FLAP_AGE:
            flaps += 1
        if s.why == "reclaim":
            reclaims += 1
    # Ready slaves at each second, from the changes; seconds with fewer than needed.
    under = sum(map(operator.lt, itertools.accumulate(ready_delta[:seconds]), need))
    days = seconds / 86400
    overhead = (model.boot_min + model.boot_max) / 2 - model.pending
    oracle = oracle_seconds(need, overhead) / 3600
    result = Result(
        name=name or policy.name,
        seconds=seconds,
        slave_hours=billed / 3600,
        dollars=billed / 3600 * price,
        under_provisioned=under / seconds if seconds else 0.0,
        flaps_per_day=flaps / days,
        launches_per_day=serial / days,
        oracle_slave_hours=oracle,
        reclaims=reclaims,
        launch_failures=launch_failures,
    )
    if keep_series:
        series["true"] = [load[min(seconds - 1, int(x) - 1)] for x in series["time"]]
        series["needed"] = [need[min(seconds - 1, int(x) - 1)] for x in series["time"]]
        result.series = series
    return result


def static_fleet(trace: Trace, table: t.Sequence[LoadRow], quantile: float = 0.99, price: float = 0.08) -> Result:
    """A fixed fleet sized for the ``quantile`` of the true load, always ready (the bench's baseline)."""
    load = true_load(trace.counts)
    need = needed(load, table)
    level = needed([sorted(load)[min(len(load) - 1, int(quantile * len(load)))]], table)[0]
    seconds = len(load)
    under = sum(1 for n in need if level < n)
    oracle = oracle_seconds(need, (Model().boot_min + Model().boot_max) / 2 - Model().pending) / 3600
    hours = level * seconds / 3600
    return Result(f"static p{quantile * 100:g}", seconds, hours, hours * price, under / seconds, 0.0, 0.0, oracle)


# --------------------------------------------------------------------------
# output


def format_table(results: t.Sequence[Result]) -> str:
    rows = [
        ("", [r.name for r in results]),
        ("slave-hours", [f"{r.slave_hours:.1f}" for r in results]),
        ("dollars", [f"{r.dollars:.2f}" for r in results]),
        ("vs oracle", [f"{r.vs_oracle:.2f}x" for r in results]),
        ("under-provisioned", [f"{r.under_provisioned * 100:.2f} %" for r in results]),
        ("flaps a day", [f"{r.flaps_per_day:.1f}" for r in results]),
        ("launches a day", [f"{r.launches_per_day:.1f}" for r in results]),
        ("reclaims", [str(r.reclaims) for r in results]),
        ("failed launch calls", [str(r.launch_failures) for r in results]),
    ]
    width = max(len(label) for label, dummy in rows)
    cols = [max(len(row[1][i]) for row in rows) for i in range(len(results))]
    lines = []
    for label, cells in rows:
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, cols)))
    return "\n".join(lines)


def _thin(series: dict[str, list[float]], points: int) -> dict[str, list[float]]:
    """At most about ``points`` points: the highest value of each bucket (the lowest for ready slaves)."""
    size = max(1, math.ceil(len(series.get("time", [])) / points))
    if size == 1:
        return series
    out: dict[str, list[float]] = {}
    for key, values in series.items():
        pick = min if key == "ready" else max
        buckets = [values[i:i + size] for i in range(0, len(values), size)]
        out[key] = [b[0] if key == "time" else pick(b) for b in buckets]
    return out


def plot(results: t.Sequence[Result], path: str, start: int = 0) -> None:
    """True and measured load, the wanted band, ready and booting slaves, one panel per conf."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, axes = plt.subplots(len(results), 1, figsize=(10, 3.2 * len(results)), sharex=True, squeeze=False)
    for ax, result in zip(axes[:, 0], results):
        s = _thin(result.series or {}, 1000)
        hours = [x / 3600 for x in s.get("time", [])]
        ax.plot(hours, s.get("true", []), color="0.6", lw=0.6, label="true load (req/s, 60 s)")
        ax.plot(hours, s.get("measured", []), color="tab:blue", lw=0.6, label="controller's load (req/s)")
        ax.set_ylabel("req/s")
        right = ax.twinx()
        right.fill_between(
            hours, s.get("min", []), s.get("max", []), step="post", color="tab:green", alpha=0.15, label="wanted band"
        )
        right.step(
            hours, s.get("needed", []), where="post", color="black", lw=0.6, ls=":", label="table min for true load"
        )
        right.step(hours, s.get("ready", []), where="post", color="tab:green", lw=1.0, label="ready slaves")
        right.step(hours, s.get("booting", []), where="post", color="tab:orange", lw=0.8, label="booting slaves")
        right.set_ylabel("slaves")
        ax.set_title(
            f"{result.name}: {result.slave_hours:.1f} slave-h ({result.vs_oracle:.2f}x oracle), "
            f"under-provisioned {result.under_provisioned * 100:.2f} %, {result.flaps_per_day:.1f} flaps/day",
            fontsize=9,
        )
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
        ax.legend(handles, labels, fontsize=7, loc="upper left", ncol=3)
    axes[-1, 0].set_xlabel("hours since " + (_show_time(start) if start else "the start"))
    fig.tight_layout()
    if path.lower().endswith(".png"):
        # A palette PNG: a fifth of the size, for docs and mail.
        import io  # pylint: disable=import-outside-toplevel

        from PIL import Image  # pylint: disable=import-outside-toplevel

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        buffer.seek(0)
        Image.open(buffer).convert("RGB").quantize(colors=48).save(path, optimize=True)
    else:
        fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------
# the command


def build_parser() -> argparse.ArgumentParser:
    d = Model()
    p = argparse.ArgumentParser(
        prog="gbrowse_aws_balancer simulate",
        description="Replay access logs or a CSV of requests per second through the balancer's decision code "
        "and a model of EC2; print what each conf would have cost and missed.",
    )
    p.add_argument("inputs", nargs="+", metavar="LOG", help="access logs (plain or gzip; globs allowed) or CSV files")
    p.add_argument("--conf", action="append", metavar="FILE", help="aws_balancer.conf to replay (repeat to compare; default: the balancer's)")
    p.add_argument("--price", type=float, metavar="USD", help="dollars per slave-hour (default: each conf's spot_bid)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="FILE", help="draw the replay to FILE.png or FILE.svg (needs matplotlib)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed of the EC2 model (default {d.seed})")
    p.add_argument(
        "--boot",
        default=f"{d.boot_min:g}-{d.boot_max:g}",
        metavar="MIN-MAX",
        help="seconds from launch to answering (default %(default)s)",
    )
    for option, default, metavar, what in (
        ("--pending", d.pending, "S", "seconds of EC2 pending, not billed"),
        ("--launch-failure", d.launch_failure, "P", "chance a launch call fails"),
        ("--never-ready", d.never_ready, "P", "chance a slave never answers"),
        ("--reclaims", d.reclaims_per_month, "P", "chance a slave is reclaimed within a month"),
    ):
        p.add_argument(option, type=float, default=default, metavar=metavar, help=f"{what} (default {default:g})")
    return p


#: The model's bounds, by field: (test, what the value must be).
_MODEL_BOUNDS: dict[str, tuple[t.Callable[[Model], bool], str]] = {
    "boot": (lambda m: 0 < m.boot_min <= m.boot_max <= 3600, "0 < MIN <= MAX <= 3600"),
    "pending": (lambda m: 0 <= m.pending <= m.boot_min, "between 0 and the shortest boot"),
    "launch_failure": (lambda m: 0 <= m.launch_failure < 1, "in [0, 1)"),
    "never_ready": (lambda m: 0 <= m.never_ready < 1, "in [0, 1)"),
    "reclaims": (lambda m: 0 <= m.reclaims_per_month < 1, "in [0, 1)"),
}


def model_problems(model: Model, price: float | None = None) -> list[tuple[str, str]]:
    """(field, what it must be) for each out-of-bounds value; the fronts name their own option.

    One list of bounds for the command and the ``balancer_simulate`` module.
    """
    problems = [(name, what) for name, (ok, what) in _MODEL_BOUNDS.items() if not ok(model)]
    if price is not None and not (math.isfinite(price) and price >= 0):
        problems.append(("price", "a non-negative number"))
    return problems


def _model(args: argparse.Namespace) -> Model:
    try:
        low, dummy, high = args.boot.partition("-")
        boot_min, boot_max = float(low), float(high or low)
    except ValueError:
        raise InputError(f"--boot {args.boot}: expected MIN-MAX seconds, like 60-240") from None
    model = Model(boot_min, boot_max, args.pending, args.launch_failure, args.never_ready, args.reclaims, args.seed)
    for name, what in model_problems(model, args.price):
        raise InputError(f"--{name.replace('_', '-')} must be {what}")
    return model


def replay(
    inputs: t.Sequence[str],
    conf_paths: t.Sequence[str],
    model: Model,
    price: float | None = None,
    keep_series: bool = False,
) -> tuple[Trace, list[Result]]:
    """Read the confs and the inputs, replay the inputs through each conf: what the command and the module run.

    InputError (one message naming FILE or FILE:LINE) for anything that cannot be replayed.
    """
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, load_conf

    confs = []
    for path in conf_paths:
        try:
            confs.append((path, load_conf(path)))
        except ConfError as exc:
            raise InputError(str(exc)) from None
    trace = read_trace(inputs)
    # Columns by file name, unless two confs share a name.
    unique = len({os.path.basename(p) for p, dummy in confs}) == len(confs)
    results = [
        simulate(
            trace,
            conf.table,
            Policy.from_master(conf.master),
            poll_interval=conf.master.poll_interval * 60,
            signal=conf.master.load_signal,
            model=model,
            max_launch=conf.master.max_launch_per_poll,
            ready_timeout=conf.slave.ready_timeout * 60,
            drain_time=conf.slave.drain_time,
            price=conf.slave.spot_bid if price is None else price,
            name=os.path.basename(path) if unique else path,
            keep_series=keep_series,
        )
        for path, conf in confs
    ]
    return trace, results


def summary(trace: Trace, model: Model, results: t.Sequence[Result]) -> dict[str, t.Any]:
    """The figures as ``--json`` prints them (and ``balancer_simulate`` returns them)."""
    return {
        "inputs": trace.sources,
        "start": trace.start,
        "seconds": trace.seconds,
        "lines": trace.lines,
        "skipped_lines": trace.bad,
        "requests": sum(trace.counts),
        "model": asdict(model),
        "results": [r.as_dict() for r in results],
    }


def main(argv: t.Sequence[str], default_conf: t.Callable[[], str]) -> int:
    """The command; ``default_conf`` gives the conf path when no --conf is given."""
    args = build_parser().parse_args(list(argv))
    try:
        model = _model(args)
        if args.plot and not args.plot.lower().endswith((".png", ".svg")):
            raise InputError(f"--plot {args.plot}: the file name must end in .png or .svg")
        if args.plot:
            try:
                import matplotlib  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
            except ImportError:
                raise InputError("--plot needs matplotlib (pip install matplotlib)") from None
        trace, results = replay(args.inputs, args.conf or [default_conf()], model, args.price, bool(args.plot))
        for line in trace.warnings:
            print(line, file=sys.stderr)
        if args.plot:
            try:
                plot(results, args.plot, trace.start)
            except OSError as exc:
                raise InputError(f"{args.plot}: {exc.strerror or exc}") from None
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    figures = summary(trace, model, results)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        skipped = f" ({trace.bad} unreadable lines skipped)" if trace.bad else ""
        print(f"{trace.seconds / 86400:.2f} days from {_show_time(trace.start)}, {figures['requests']} requests{skipped}")
        print(f"oracle: {results[0].oracle_slave_hours:.1f} slave-hours")
        print(format_table(results))
    return 0
