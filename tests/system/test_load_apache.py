# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The load measure against a real private Apache 2.4 on 127.0.0.1.

Figures are printed (``pytest -s``) so they can be quoted. Bounds compare the
meter with the generator's own completion times in the same window, so a slow,
shared machine changes the rates but not the verdict.
"""

from __future__ import annotations

import time
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import (
    Load,
    LoadMeter,
    StatusError,
    fetch_status,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import (
    FixedRateLoad,
    PrivateApache,
    ab_burst,
)

INTERVAL = 4.0  # seconds between samples: short for tests, the daemon uses minutes
TOLERANCE = 0.10  # measured vs true rate

MakeLoad = t.Callable[..., FixedRateLoad]


def timed_sample(meter: LoadMeter) -> tuple[Load, float]:
    load = meter.sample()
    if meter.last is None:
        raise AssertionError("LoadMeter.sample() returned without a last sample")
    return load, meter.last.at


def report(what: str, **figures: object) -> None:
    shown = "  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\n[load] {what}: {shown}")


def test_each_status_fetch_counts_once_and_only_after_it(private_apache: PrivateApache) -> None:
    """A reading never includes its own request; the next one includes it: one own access per interval."""
    readings = []
    for dummy in range(4):
        readings.append(fetch_status(private_apache.status_url).total_accesses)
        time.sleep(0.2)
    deltas = [b - a for a, b in zip(readings, readings[1:])]  # type: ignore[operator]
    report("idle Apache, Total Accesses of consecutive fetches", readings=readings, deltas=deltas)
    assert deltas == [1, 1, 1]

    meter = LoadMeter(private_apache.status_url)
    meter.sample()
    time.sleep(1.0)
    assert meter.sample().rate == 0.0  # exactly: the own fetch is subtracted
    time.sleep(1.0)
    assert meter.sample().rate == 0.0


@pytest.mark.parametrize(("target", "threads"), [(50, 4), (200, 8)])
def test_measured_rate_matches_true_rate(
    private_apache: PrivateApache, fixed_rate_load: MakeLoad, target: int, threads: int
) -> None:
    load = fixed_rate_load(private_apache.small_file_url, target, threads=threads, max_duration=60)
    meter = LoadMeter(private_apache.status_url)
    time.sleep(1.0)  # connections open, pace settled
    t0 = timed_sample(meter)[1]
    time.sleep(INTERVAL)
    measured, t1 = timed_sample(meter)
    true = load.rate_between(t0, t1)
    assert measured.rate is not None
    error = (measured.rate - true) / true
    report(
        f"fixed rate {target} req/s",
        window_s=t1 - t0,
        true=true,
        measured=measured.rate,
        error_pct=100 * error,
        apache_reqpersec=measured.req_per_sec,
        busy_workers=measured.busy_workers,
        generator_errors=load.errors,
    )
    # The generator must have kept roughly to its pace, or this is not the test it claims to be.
    assert true > 0.5 * target, f"the machine is too busy: only {true:.1f} of {target} req/s were sent"
    assert abs(error) <= TOLERANCE, f"measured {measured.rate:.1f} req/s, true {true:.1f} req/s"
    assert not measured.restarted


def test_rate_falls_to_zero_while_reqpersec_stays_high(private_apache: PrivateApache, fixed_rate_load: MakeLoad) -> None:
    burst = ab_burst(private_apache.small_file_url, seconds=2, concurrency=8)
    load = fixed_rate_load(private_apache.small_file_url, 100, threads=4, max_duration=60)
    meter = LoadMeter(private_apache.status_url)
    time.sleep(1.0)
    base, t0 = timed_sample(meter)
    time.sleep(INTERVAL)
    load.stop()
    busy, t1 = timed_sample(meter)  # covers the load up to its end
    time.sleep(INTERVAL)
    idle, t2 = timed_sample(meter)  # one poll after the load stopped
    report(
        "ab burst, 100 req/s, stop",
        ab_requests=burst.requests,
        ab_per_s=burst.per_second,
        rate_during=busy.rate,
        true_during=load.rate_between(t0, t1),
        rate_after=idle.rate,
        reqpersec_before=base.req_per_sec,
        reqpersec_during=busy.req_per_sec,
        reqpersec_after=idle.req_per_sec,
    )
    assert busy.rate is not None and busy.rate == pytest.approx(load.rate_between(t0, t1), rel=TOLERANCE)
    assert idle.rate is not None and idle.rate < 1.0
    # Apache's figure is the lifetime average: still high with nothing going on.
    assert idle.req_per_sec is not None and idle.req_per_sec > 50
    accesses, uptime = idle.status.total_accesses, idle.status.uptime
    assert accesses is not None and uptime
    assert idle.req_per_sec == pytest.approx(accesses / uptime, rel=0.01)


def test_restart_between_samples(private_apache: PrivateApache, fixed_rate_load: MakeLoad) -> None:
    target = 50
    load = fixed_rate_load(private_apache.small_file_url, target, threads=4, max_duration=60)
    meter = LoadMeter(private_apache.status_url)
    time.sleep(1.0)
    before = meter.sample()
    time.sleep(2.0)
    restart_at = time.monotonic()
    private_apache.restart()  # apache2 -k restart (SIGHUP): counters to zero
    time.sleep(2.5)
    after, t1 = timed_sample(meter)
    true_since_restart = load.rate_between(restart_at, t1)
    report(
        "restart (SIGHUP) between samples",
        accesses_before=before.status.total_accesses,
        accesses_after=after.status.total_accesses,
        restart_time_before=before.status.restart_time,
        restart_time_after=after.status.restart_time,
        uptime_after=after.status.uptime,
        rate=after.rate,
        true_since_restart=true_since_restart,
    )
    assert after.restarted
    assert after.status.restart_time != before.status.restart_time
    assert after.rate is None or 0 <= after.rate <= 2 * target + 10
    time.sleep(INTERVAL)
    next_load, t2 = timed_sample(meter)
    true = load.rate_between(t1, t2)
    report("first sample after the restart one", rate=next_load.rate, true=true)
    assert not next_load.restarted
    assert next_load.rate is not None and next_load.rate == pytest.approx(true, rel=TOLERANCE)


def test_immediate_sample_after_restart_has_no_bogus_rate(private_apache: PrivateApache) -> None:
    ab_burst(private_apache.small_file_url, seconds=1, concurrency=4)
    meter = LoadMeter(private_apache.status_url)
    meter.sample()
    private_apache.restart()
    load = meter.sample()
    report("sample right after restart", uptime=load.status.uptime, rate=load.rate, accesses=load.status.total_accesses)
    assert load.restarted
    # Uptime 0 s: no rate at all; 1 s: the handful of status fetches since.
    assert load.rate is None or 0 <= load.rate < 10


def test_graceful_restart_is_not_a_restart(private_apache: PrivateApache, fixed_rate_load: MakeLoad) -> None:
    """What the balancer itself triggers after a render farm change: counters go on."""
    target = 50
    load = fixed_rate_load(private_apache.small_file_url, target, threads=4, max_duration=60)
    meter = LoadMeter(private_apache.status_url)
    time.sleep(1.0)
    before, t0 = timed_sample(meter)
    time.sleep(INTERVAL / 2)
    private_apache.graceful()  # apache2 -k graceful (SIGUSR1)
    time.sleep(INTERVAL / 2)
    after, t1 = timed_sample(meter)
    true = load.rate_between(t0, t1)
    report("graceful restart between samples", rate=after.rate, true=true, generator_errors=load.errors)
    assert not after.restarted
    assert after.status.restart_time == before.status.restart_time
    # graceful() itself fetched the status page a few times in this window.
    assert after.rate is not None and after.rate == pytest.approx(true, rel=0.15)


def test_stopped_apache_is_a_status_error(private_apache: PrivateApache) -> None:
    meter = LoadMeter(private_apache.status_url, timeout=5)
    meter.sample()
    private_apache.stop()
    with pytest.raises(StatusError) as info:
        meter.sample()
    report("Apache stopped", error=str(info.value))
    assert str(info.value) == f"{private_apache.status_url}?auto: connection refused"


def test_extended_status_off_is_explained() -> None:
    with PrivateApache(extended_status=False) as apache:
        with pytest.raises(StatusError, match="ExtendedStatus On is needed") as info:
            fetch_status(apache.status_url)
    assert str(info.value).startswith(apache.status_url)
