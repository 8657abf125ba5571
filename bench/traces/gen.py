# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Seeded generator of genome-browser traffic: requests per second over days.

The model (each part drawn from the seed, so one seed is one site and week):

- a site size: the weekday peak of ordinary traffic, 2 to 10 req/s
  (``--peak``: a small lab's site is 0.3-2);
- day/night and weekly cycles: a working-day profile (morning and afternoon
  peaks, a second audience some hours away), nights at 4-12 % of the peak,
  weekends at 30-45 % of a weekday;
- users in sessions: session starts follow the cycle (Poisson); each session
  has a heavy-tailed number of page views (Pareto, alpha 1.3, up to 400: most
  users look at 1-3 pages, a few scroll through hundreds) with lognormal think
  times (median 12 s); every page view is a batch of 1 + Poisson(7) requests
  (~8: the page and its track images) arriving within a second or two;
- crawlers: 2-8 sessions a week, each a steady 1-4 req/s for 1-6 hours;
- flash crowds: 0-2 a week (after a publication or a mailing list post):
  extra sessions ramping up over 5-15 minutes to +5..25 req/s, then decaying
  with a time constant of 30-120 minutes;
- classes of students: 0-3 a week on weekdays, 15-40 students for 60-90
  minutes, each instructor step (every 3-8 minutes) a page view from each
  student within half a minute;
- Apache restarts: 1-3 a week, 2-10 s without a request served.

Usage::

    python3 bench/traces/gen.py --seed 3 --days 7 > trace.csv            # second,requests
    python3 bench/traces/gen.py --seed 3 --days 1 --log > access.log     # combined log lines

Needs numpy (a development requirement; the balancer itself does not).
"""

from __future__ import annotations

import argparse
import math
import sys
import typing as t
import time

import numpy as np

DAY = 86400
#: The weekday peak of ordinary traffic is drawn from this range (req/s): ``--peak``.
PEAK = (2.0, 10.0)
#: Monday 2026-11-02 00:00:00 UTC: traces start on a Monday at midnight.
START = 1793577600


def _profile(hours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Weekday shape, 0..1: two working-hour peaks plus a smaller audience elsewhere."""
    night = rng.uniform(0.04, 0.12)
    shift = rng.uniform(6, 9)  # hours to the second audience
    other = rng.uniform(0.15, 0.4)

    def bumps(h: np.ndarray) -> np.ndarray:
        return np.exp(-(((h - 10.5) / 1.8) ** 2)) + 0.9 * np.exp(-(((h - 15.0) / 2.2) ** 2))

    shape = bumps(hours) + other * bumps((hours + shift) % 24)
    shape = shape / shape.max()
    return night + (1 - night) * shape


def _views_per_session(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(400, np.floor(rng.pareto(1.3, n) + 1)).astype(np.int64)


MEAN_VIEWS = None


def _mean_views() -> float:
    global MEAN_VIEWS  # pylint: disable=global-statement
    if MEAN_VIEWS is None:
        MEAN_VIEWS = float(_views_per_session(np.random.default_rng(0), 2_000_000).mean())
    return MEAN_VIEWS


def _sessions(rng: np.random.Generator, starts_rate: np.ndarray) -> np.ndarray:
    """Page-view times (float seconds) of sessions starting at the given per-second rates."""
    counts = rng.poisson(starts_rate)
    starts = np.repeat(np.arange(len(starts_rate)), counts) + rng.random(int(counts.sum()))
    views = _views_per_session(rng, len(starts))
    owner = np.repeat(np.arange(len(starts)), views)
    think = rng.lognormal(math.log(12), 1.0, int(views.sum()))
    # the first view of each session is at its start
    first = np.concatenate(([0], np.cumsum(views)[:-1]))
    think[first] = 0
    clock = np.cumsum(think)
    base = clock[first]
    return starts[owner] + (clock - base[owner])


def _requests(rng: np.random.Generator, view_times: np.ndarray, seconds: int) -> np.ndarray:
    """Each page view: 1 + Poisson(7) requests within a second or two."""
    per_view = 1 + rng.poisson(7, len(view_times))
    times = np.repeat(view_times, per_view) + rng.exponential(0.6, int(per_view.sum()))
    times = times[times < seconds]
    return np.bincount(times.astype(np.int64), minlength=seconds)


def generate(seed: int, days: int = 7, peak_range: tuple[float, float] = PEAK) -> np.ndarray:
    """Requests served in each second of ``days`` days, from START (a Monday 00:00 UTC);
    the weekday peak of ordinary traffic drawn from ``peak_range`` (req/s)."""
    rng = np.random.default_rng(seed)
    seconds = days * DAY
    t = np.arange(seconds)
    hours = (t % DAY) / 3600.0
    weekday = (t // DAY) % 7 < 5
    peak = rng.uniform(*peak_range)
    weekend = rng.uniform(0.3, 0.45)
    rate = peak * _profile(hours, rng) * np.where(weekday, 1.0, weekend)
    # Day-to-day variation: each day +-20 %.
    rate = rate * np.repeat(rng.uniform(0.8, 1.2, days), DAY)

    # Flash crowds: extra ordinary-looking traffic.
    for dummy in range(rng.integers(0, 3)):
        start = int(rng.integers(0, seconds - 3 * 3600))
        ramp = rng.uniform(300, 900)
        tau = rng.uniform(1800, 7200)
        height = rng.uniform(5, 25)
        dt = t[start:] - start
        rate[start:] += height * np.where(dt < ramp, dt / ramp, np.exp(-(dt - ramp) / tau))

    view_rate = rate / 8.0
    counts = _requests(rng, _sessions(rng, view_rate / _mean_views()), seconds)

    # Classes of students: synchronized page views.
    for dummy in range(rng.integers(0, 4)):
        day = int(rng.integers(0, 5))
        begin = day * DAY + int(rng.uniform(9, 16) * 3600)
        length = rng.uniform(3600, 5400)
        students = int(rng.integers(15, 41))
        step_times = []
        at = begin
        while at < begin + length:
            step_times.append(at)
            at += rng.uniform(180, 480)
        views = np.concatenate([s + rng.lognormal(math.log(8), 0.7, students) for s in step_times])
        counts += _requests(rng, views[views < seconds], seconds)

    # Crawlers: steady single requests for hours.
    for dummy in range(rng.integers(2, 9)):
        start = int(rng.integers(0, seconds - 3600))
        length = int(rng.uniform(1, 6) * 3600)
        end = min(seconds, start + length)
        counts[start:end] += rng.poisson(rng.uniform(1, 4), end - start)

    # Apache restarts: nothing served for a few seconds.
    for dummy in range(rng.integers(1, 4)):
        at = int(rng.integers(0, seconds - 10))
        counts[at : at + int(rng.integers(2, 11))] = 0
    return counts


def write_csv(counts: np.ndarray, out: t.TextIO, start: int = START) -> None:
    out.write("time,requests\n")
    for i in np.nonzero(counts)[0]:
        out.write(f"{start + int(i)},{int(counts[i])}\n")


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def write_log(counts: np.ndarray, out, start: int = START, limit: int | None = None) -> int:
    """Combined-format lines, ``counts[i]`` of them stamped second i; returns lines written."""
    written = 0
    for i in np.nonzero(counts)[0]:
        tm = time.gmtime(start + int(i))
        stamp = f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000"
        line = (
            f'192.0.2.{i % 250 + 1} - - [{stamp}] "GET /cgi-bin/gb2/gbrowse_img/yeast/?name=chrI:{i}..{i + 5000}'
            f' HTTP/1.1" 200 {1000 + i % 9000} "https://gbrowse.example.org/cgi-bin/gb2/gbrowse/yeast/"'
            f' "Mozilla/5.0 (X11; Linux x86_64)"\n'
        )
        n = int(counts[i])
        if limit is not None:
            n = min(n, limit - written)
        out.write(line * n)
        written += n
        if limit is not None and written >= limit:
            break
    return written


def peak_range(text: str) -> tuple[float, float]:
    """``LOW-HIGH`` req/s, for ``--peak``."""
    try:
        low, high = (float(x) for x in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW-HIGH (req/s)") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: 0 < LOW <= HIGH")
    return low, high


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--log", action="store_true", help="write Apache combined log lines instead of CSV")
    p.add_argument("--lines", type=int, help="with --log: stop after this many lines")
    p.add_argument("--peak", type=peak_range, default=PEAK, help="LOW-HIGH req/s of the weekday peak (2-10)")
    args = p.parse_args(argv)
    counts = generate(args.seed, args.days, args.peak)
    if args.log:
        write_log(counts, sys.stdout, limit=args.lines)
    else:
        write_csv(counts, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
