# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller: load samples in, the wanted band out.

Pure and replayable: no clock, no I/O. Time enters as numbers (seconds) the
caller passes in, so the daemon (real Apache samples) and the simulator
(replayed access logs) run exactly this code.

Two policies (``scaling_policy`` in ``[MASTER]``):

``immediate``
    The balancer as it was before this controller: each poll the band is the
    load table's row for the poll's value of the load signal, held up by
    ``scale_in_delay`` (the highest min of the last N minutes). With
    ``load_signal = reqpersec`` this is the original Perl balancer.

``adaptive`` (default)
    Samples every ``sample_interval`` seconds between polls, and

    - rises fast: the load estimate is the rate over the last 60 s (what the
      table's thresholds mean) plus ``load_margin`` (default :data:`MARGIN`) times its own noise (the
      wobble of bursty traffic, measured over the last hour); a row higher
      than the current one is taken at once, and between polls a sample that
      calls for more slaves than there are polls at once;
    - falls slowly: a lower row is taken only when a high percentile
      (:data:`SCALE_IN_QUANTILE`) of the last ``scale_in_window`` (default :data:`SCALE_IN_WINDOW`) seconds
      of estimates is below the lower row's ceiling by a hysteresis margin
      (:data:`HYSTERESIS`), so one quiet minute in a busy hour, or a load
      wobbling at a threshold, moves nothing; then the fleet goes down to the
      kept row's min (:data:`SCALE_IN_TO_MIN`): the table's max is not a
      second hysteresis on top of the percentile's;
    - keeps slaves launched for a rise at least :data:`HOLD` seconds (10 min):
      no flapping.

    ``scale_in_delay`` applies on top, as for ``immediate``.
"""

from __future__ import annotations

import bisect
import math
import collections
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    Band,
    LoadRow,
    stabilized,
    wanted,
)

POLICIES = ("adaptive", "immediate")

#: Seconds between samples of Apache between polls (adaptive policy).
SAMPLE_INTERVAL = 5.0

#: Seconds between readiness checks of booting slaves between polls (the daemon's
#: loop; the simulator models it): with a check's own 2 s timeout a slave joins
#: the farm within 5 s of answering.
JOIN_INTERVAL = 2.5

# The adaptive constants below were tuned on bench/traces/gen.py's seeds 1-3
# and reported on held-out seeds (bench/README.md, "Scaling policies").

#: Seconds of samples in the adaptive load estimate: the table's req/s are
#: requests over the last minute.
ESTIMATE_WINDOW = 60.0
#: Seconds of estimates the scale-in percentile looks at (with HOLD, the shortest
#: time a slave launched for a rise is kept).
SCALE_IN_WINDOW = 10 * 60.0
#: The percentile of those estimates that must be below a row to leave it.
SCALE_IN_QUANTILE = 0.95
#: Fraction under a threshold the scale-in percentile must be to leave a row.
HYSTERESIS = 0.10
#: Seconds slaves launched for a rise are kept at least (a flap is < 10 min).
HOLD = 10 * 60.0
#: Standard deviations of the estimate's own noise added to it: the 60 s rate of
#: page views (~8 requests each) wobbles by sqrt(dispersion * load / 60 s),
#: 37 % at 1 req/s, 10 % at 10 req/s. With the shorter window, one standard
#: deviation (launching ahead of a rise) is what keeps misses under 1 %.
MARGIN = 1.0
#: Scale in to the min of the row kept, not to the current load's row's max.
SCALE_IN_TO_MIN = True


@dataclass(frozen=True)
class Policy:
    """How the controller turns samples into a band (from ``[MASTER]``)."""

    name: str = "adaptive"
    scale_in_delay: float = 0.0  # seconds; today's stabilization, both policies
    headroom: float = 0.0  # fraction added to the load estimate (adaptive)
    estimate_window: float = ESTIMATE_WINDOW
    scale_in_window: float = SCALE_IN_WINDOW
    scale_in_quantile: float = SCALE_IN_QUANTILE
    hysteresis: float = HYSTERESIS
    hold: float = HOLD
    margin: float = MARGIN  # standard deviations of the estimate's noise added to it (adaptive)
    scale_in_to_min: bool = SCALE_IN_TO_MIN  # adaptive: the band's max is its min (no slaves kept above it)

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown scaling policy {self.name!r} (known: {', '.join(POLICIES)})")
        if self.scale_in_delay < 0 or self.headroom < 0 or self.estimate_window <= 0 or self.hold < 0:
            raise ValueError("invalid policy parameters")
        if not 0 < self.scale_in_quantile <= 1 or not 0 <= self.hysteresis < 1 or self.scale_in_window < 0:
            raise ValueError("invalid policy parameters")

    @property
    def samples_between_polls(self) -> bool:
        """Whether the daemon should sample Apache between polls for this policy."""
        return self.name == "adaptive"

    @classmethod
    def from_master(cls, master: t.Any) -> "Policy":
        """The policy of a ``MasterConf``."""
        return cls(
            name=master.scaling_policy,
            scale_in_delay=master.scale_in_delay * 60,
            scale_in_window=master.scale_in_window * 60,
            margin=master.load_margin,
        )


@dataclass(frozen=True)
class Decision:
    """The controller's answer at one poll."""

    band: Band
    estimate: float | None  # the load the band was read from (req/s); None when held
    held: bool  # no load figure: the fleet is held as it is
    why: str = ""  # which load table row gave the band, and what held it up (for status and the history)


class Controller:
    """State: recent samples and bands. ``observe`` each sample, ``decide`` each poll."""

    def __init__(self, table: t.Sequence[LoadRow], policy: Policy | None = None) -> None:
        self.table = tuple(sorted(table, key=lambda r: r.threshold))
        self.policy = policy or Policy()
        self._thresholds = [row.threshold for row in self.table]
        # (end time, value, seconds covered) of each sample; None values are gaps.
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque()
        self._last_value: float | None = None
        self._missing = False
        # (time, estimate) at each decision, for the scale-in percentile.
        self._estimates: collections.deque[tuple[float, float]] = collections.deque()
        self._rises: collections.deque[tuple[float, int]] = collections.deque()  # (time, min launched for)
        self._row = -1  # adaptive: current row index, -1 below the first
        self._history: collections.deque[tuple[float, Band]] = collections.deque()
        self._last_band: Band | None = None
        self._why: list[str] = []  # what the last decision read the band from, for Decision.why
        self._sum = self._span = 0.0  # running sums of value * span and span over ``_samples``
        self._noise: collections.deque[tuple[float, float, float]] = collections.deque()
        self._prev_count: float | None = None
        self._prev_interval = 0.0
        self._squares = self._counted = 0.0  # running sums over ``_noise``

    def dispersion(self) -> float:
        """Variance over mean of requests per sample in the last hour (1 for Poisson arrivals, ~8 for page views)."""
        return max(1.0, self._squares / self._counted) if self._counted > 0.5 else 1.0

    # -- input ----------------------------------------------------------------

    def observe(self, now: float, value: float | None, interval: float = 0.0) -> None:
        """One reading of the load signal at ``now``.

        ``value`` is the signal (the rate over the ``interval`` seconds before
        ``now`` for ``rate``; a level for the other signals), None when Apache
        could not be read or gave no figure (the baseline sample).
        """
        if value is None:
            self._missing = True
            return
        self._missing = False
        self._last_value = float(value)
        span = float(interval) if interval > 0 else 1e-3  # a level without an interval: a point
        self._samples.append((now, float(value), span))
        self._sum += float(value) * span
        self._span += span
        self._trim(now - self.policy.estimate_window)
        if interval > 0:
            # Requests per sample, for the noise estimate (burstiness: requests per arrival).
            count = float(value) * interval
            if self._prev_count is not None and abs(interval - self._prev_interval) < 0.5:
                entry = (now, (count - self._prev_count) ** 2, count + self._prev_count)
                self._noise.append(entry)
                self._squares += entry[1]
                self._counted += entry[2]
                while self._noise[0][0] < now - 3600:
                    dummy, square, counted = self._noise.popleft()
                    self._squares -= square
                    self._counted -= counted
            self._prev_count, self._prev_interval = count, interval

    def _trim(self, start: float) -> None:
        """Forget samples that ended before ``start`` (time only moves forward)."""
        while len(self._samples) > 1 and self._samples[0][0] <= start:
            dummy, value, span = self._samples.popleft()
            self._sum -= value * span
            self._span -= span

    def estimate(self, now: float) -> float | None:
        """The load over the last ``estimate_window`` seconds, from the samples (time-weighted)."""
        start = now - self.policy.estimate_window
        self._trim(start)
        total, weight = self._sum, self._span
        if self._samples:
            end, value, span = self._samples[0]
            cut = min(start, end) - (end - span)  # the part of the oldest sample before the window
            if cut > 0:
                total -= value * cut
                weight -= cut
        if weight <= 1e-9:
            return self._last_value
        return max(0.0, total / weight)

    # -- output ---------------------------------------------------------------

    def wants_more(self, now: float, alive: int) -> bool:
        """Whether the load since the last poll already calls for more than ``alive`` slaves.

        Cheap and without side effects: the daemon asks after each sample between
        polls and polls at once when the answer is yes (adaptive policy only).
        """
        if self.policy.name != "adaptive" or self._missing or self._last_value is None:
            return False
        load = self.estimate(now)
        if load is None:
            return False
        row = self._index(self._boost(load))
        return row >= 0 and self.table[row].min > alive

    def _boost(self, load: float) -> float:
        p = self.policy
        boosted = load * (1 + p.headroom)
        if p.margin > 0:
            # The 60 s rate of bursty traffic wobbles by sqrt(dispersion * load / window).
            boosted += p.margin * math.sqrt(self.dispersion() * max(load, 1.0 / p.estimate_window) / p.estimate_window)
        return boosted

    def decide(self, now: float, alive: int = 0) -> Decision:
        """The band at ``now``; ``alive`` is how many slaves are not going away (for a hold)."""
        if self._missing or self._last_value is None:
            # Without a load figure, hold: never scale in on missing data.
            last = self._last_band or Band(0, 0)
            why = "no load figure (Apache could not be read): the fleet is held as it is"
            return Decision(Band(last.min, max(last.max, alive)), None, True, why)
        if self.policy.name == "immediate":
            value = self._last_value
            band = wanted(value, self.table)
            self._why = [f"load {value:.2f}: {self._row_text(self._index(value))}"]
        else:
            estimate = self.estimate(now)
            value = self._last_value if estimate is None else estimate
            band = self._adaptive(now, value, alive)
        stabilized_band = self._stabilize(now, band)
        if stabilized_band != band:
            self._why.append(
                f"held up to min {stabilized_band.min} by scale_in_delay ({self.policy.scale_in_delay / 60:g} min)"
            )
        self._last_band = stabilized_band
        return Decision(stabilized_band, value, False, "; ".join(self._why))

    def _row_text(self, index: int) -> str:
        """A load table row as status shows it: ``row at line 12 (>= 20 req/s: 1-2 slaves)``."""
        if index < 0:
            first = f" ({self.table[0].threshold:g} req/s)" if self.table else ""
            return f"below the first row{first}: no slaves"
        row = self.table[index]
        where = f" at line {row.line}" if row.line else ""
        return f"row{where} (>= {row.threshold:g} req/s: {row.min}-{row.max} slaves)"

    def _index(self, load: float) -> int:
        return bisect.bisect_right(self._thresholds, load) - 1

    def _adaptive(self, now: float, load: float, alive: int) -> Band:
        p = self.policy
        boosted = self._boost(load)
        self._estimates.append((now, boosted))
        while self._estimates and self._estimates[0][0] < now - p.scale_in_window:
            self._estimates.popleft()
        while self._rises and self._rises[0][0] < now - p.hold:
            self._rises.popleft()
        up = self._index(boosted)
        row = self._row
        margin = f" ({load:.2f} measured, plus margin)" if boosted > load else ""
        self._why = [f"load estimate {boosted:.2f}{margin}: {self._row_text(up)}"]
        if up > row:
            row = up
        elif row >= 0:
            values = sorted(v for dummy, v in self._estimates)
            high = values[min(len(values) - 1, int(p.scale_in_quantile * len(values)))]
            # Leave the row only when the percentile is under its threshold by the margin;
            # then go to the row the percentile is in (never below the current load's).
            if high < self._thresholds[row] * (1 - p.hysteresis):
                row = max(up, self._index(high / (1 - p.hysteresis)))
            if row > up:
                self._why.append(
                    f"min kept from the {self._row_text(row)}: the {p.scale_in_quantile * 100:g}th percentile of the last "
                    f"{p.scale_in_window / 60:g} min ({high:.2f}) is not {p.hysteresis:.0%} under its threshold"
                )
        self._row = row
        # The min of the row kept. Its max only with ``scale_in_to_min`` off (as
        # ``scale_in_delay`` does: the current load's row's max): the percentile above
        # already is the hysteresis, and keeping slaves up to the max cost 4 % more
        # slave-hours on the tuning traces for 0.2 % less time under-provisioned
        # (bench/README.md, test_adaptive_scales_in_to_the_min_of_the_row_kept).
        low = 0 if row < 0 else self.table[row].min
        band = Band(low, low if p.scale_in_to_min else max(low, 0 if up < 0 else self.table[up].max))
        if band.min > alive:
            # Slaves will be launched for this: keep them at least ``hold`` seconds.
            self._rises.append((now, band.min))
        floor = max((n for dummy, n in self._rises), default=0)
        if floor > band.min:
            band = Band(floor, max(band.max, floor))
            self._why.append(f"held at min {floor}: slaves launched for a rise are kept {p.hold / 60:g} min")
        return band

    def _stabilize(self, now: float, band: Band) -> Band:
        window = self.policy.scale_in_delay
        self._history.append((now, band))
        while self._history and self._history[0][0] < now - window:
            self._history.popleft()
        return stabilized(band, self._history, now, window)


__all__ = ["Controller", "Decision", "Policy", "POLICIES", "wanted"]
