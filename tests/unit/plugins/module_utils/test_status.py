# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of _status: parsing, the current rate, LoadMeter, fetch_status over loopback HTTP."""

from __future__ import annotations

import base64
import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import (
    SIGNALS,
    Load,
    LoadMeter,
    Sample,
    ServerStatus,
    StatusError,
    current_rate,
    fetch_status,
    parse_number,
    parse_status,
    snake_case,
    status_url,
)

# -- ?auto bodies copied from a real Apache/2.4.71 (Debian) --------------------

APACHE24 = f"""\
127.0.0.1
ServerVersion: Apache/2.4.71 (Debian)
ServerMPM: event
Server Built: 2026-11-12T08:58:41
CurrentTime: Wednesday, 25-Nov-2026 00:12:10 UTC
RestartTime: Wednesday, 25-Nov-2026 00:12:06 UTC
ParentServerConfigGeneration: 1
ParentServerMPMGeneration: 0
ServerUptimeSeconds: 4
ServerUptime: 4 seconds
Load1: 0.50
Load5: 0.28
Load15: 0.15
Total Accesses: 23403
Total kBytes: 12052
Total Duration: 2765
CPUUser: .24
CPUSystem: 1.08
CPUChildrenUser: 0
CPUChildrenSystem: 0
CPULoad: 33
Uptime: 4
ReqPerSec: 5850.75
BytesPerSec: 3085310
BytesPerReq: 527.336
DurationPerReq: .118147
BusyWorkers: 1
GracefulWorkers: 0
IdleWorkers: 49
Processes: 2
Stopping: 0
ConnsTotal: 0
ConnsAsyncWaitIO: 0
ConnsAsyncWriting: 0
ConnsAsyncKeepAlive: 0
ConnsAsyncClosing: 0
Scoreboard: {"_" + "W" + "_" * 48 + "." * 100}
"""

# Right after a (re)start: uptime 0, so no ReqPerSec, BytesPerSec, CPULoad;
# "ServerUptime:" has an empty value.
APACHE24_UPTIME0 = f"""\
127.0.0.1
ServerVersion: Apache/2.4.71 (Debian)
ServerMPM: event
Server Built: 2026-11-12T08:58:41
CurrentTime: Wednesday, 25-Nov-2026 00:11:48 UTC
RestartTime: Wednesday, 25-Nov-2026 00:11:48 UTC
ParentServerConfigGeneration: 1
ParentServerMPMGeneration: 0
ServerUptimeSeconds: 0
ServerUptime:
Load1: 0.14
Load5: 0.21
Load15: 0.12
Total Accesses: 1
Total kBytes: 1
Total Duration: 0
CPUUser: 0
CPUSystem: 0
CPUChildrenUser: 0
CPUChildrenSystem: 0
Uptime: 0
BytesPerReq: 1024
DurationPerReq: 0
BusyWorkers: 1
GracefulWorkers: 0
IdleWorkers: 49
Processes: 2
Stopping: 0
ConnsTotal: 0
ConnsAsyncWaitIO: 0
ConnsAsyncWriting: 0
ConnsAsyncKeepAlive: 0
ConnsAsyncClosing: 0
Scoreboard: {"_" + "W" + "_" * 48 + "." * 100}
"""

# mod_ssl with an SSLSessionCache appends a title line and Cache* fields.
APACHE24_TLS = f"""\
127.0.0.1
ServerVersion: Apache/2.4.71 (Debian) OpenSSL/3.0.19
ServerMPM: event
Server Built: 2026-11-12T08:58:41
CurrentTime: Wednesday, 25-Nov-2026 00:13:36 UTC
RestartTime: Wednesday, 25-Nov-2026 00:13:35 UTC
ParentServerConfigGeneration: 1
ParentServerMPMGeneration: 0
ServerUptimeSeconds: 1
ServerUptime: 1 second
Load1: 0.28
Load5: 0.25
Load15: 0.15
Total Accesses: 1
Total kBytes: 1
Total Duration: 0
CPUUser: 0
CPUSystem: 0
CPUChildrenUser: 0
CPUChildrenSystem: 0
Uptime: 1
ReqPerSec: 1
BytesPerSec: 1024
BytesPerReq: 1024
DurationPerReq: 0
BusyWorkers: 1
GracefulWorkers: 0
IdleWorkers: 49
Processes: 2
Stopping: 0
ConnsTotal: 0
ConnsAsyncWaitIO: 0
ConnsAsyncWriting: 0
ConnsAsyncKeepAlive: 0
ConnsAsyncClosing: 0
Scoreboard: {"_" * 25 + "W" + "_" * 24 + "." * 100}
TLSSessionCacheStatus
CacheType: SHMCB
CacheSharedMemory: 512000
CacheCurrentEntries: 0
CacheSubcaches: 32
CacheIndexesPerSubcaches: 88
CacheIndexUsage: 0%
CacheUsage: 0%
CacheStoreCount: 0
CacheReplaceCount: 0
CacheExpireCount: 0
CacheDiscardCount: 0
CacheRetrieveHitCount: 0
CacheRetrieveMissCount: 0
CacheRemoveHitCount: 0
CacheRemoveMissCount: 0
"""

# ExtendedStatus Off: no Total Accesses / kBytes / Duration / CPU / ReqPerSec.
APACHE24_NO_EXTENDED = f"""\
127.0.0.1
ServerVersion: Apache/2.4.71 (Debian)
ServerMPM: event
Server Built: 2026-11-12T08:58:41
CurrentTime: Wednesday, 25-Nov-2026 00:13:35 UTC
RestartTime: Wednesday, 25-Nov-2026 00:13:35 UTC
ParentServerConfigGeneration: 1
ParentServerMPMGeneration: 0
ServerUptimeSeconds: 0
ServerUptime:
Load1: 0.28
Load5: 0.25
Load15: 0.15
BusyWorkers: 1
GracefulWorkers: 0
IdleWorkers: 49
Processes: 2
Stopping: 0
ConnsTotal: 0
ConnsAsyncWaitIO: 0
ConnsAsyncWriting: 0
ConnsAsyncKeepAlive: 0
ConnsAsyncClosing: 0
Scoreboard: {"_" * 27 + "W" + "_" * 22 + "." * 100}
"""

# Apache 2.2: no host line, no RestartTime, no ServerUptimeSeconds.
APACHE22 = """\
Total Accesses: 1297
Total kBytes: 3417
CPULoad: .0666667
Uptime: 1520
ReqPerSec: .853289
BytesPerSec: 2301.98
BytesPerReq: 2697.75
BusyWorkers: 1
IdleWorkers: 7
Scoreboard: W_______........................................................
"""

HTML_STATUS = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head>
<title>Apache Status</title>
</head><body>
<h1>Apache Server Status for 127.0.0.1 (via 127.0.0.1)</h1>
<dl><dt>Total accesses: 3 - Total Traffic: 3 kB</dt></dl>
</body></html>
"""

HTML_OTHER = "<html><body><h1>It works!</h1></body></html>\n"

URL = "http://127.0.0.1:8080/server-status"


def status_with(accesses: int, *, restart: str = "Mon, 01-Jan-2026 00:00:00 UTC", uptime: int | None = 100) -> ServerStatus:
    fields = {"RestartTime": restart, "Total Accesses": str(accesses), "BusyWorkers": "3", "IdleWorkers": "47"}
    if uptime is not None:
        fields["ServerUptimeSeconds"] = str(uptime)
        fields["Uptime"] = str(uptime)
        if uptime > 0:
            fields["ReqPerSec"] = f"{accesses / uptime:g}"
    return ServerStatus(host="master", fields=fields)


# -- parsing ---------------------------------------------------------------------


def test_parse_apache24_keeps_every_field_as_printed() -> None:
    status = parse_status(APACHE24, URL)
    assert status.host == "127.0.0.1"
    assert status.fields["Total Accesses"] == "23403"
    assert status.fields["CPUUser"] == ".24"
    assert status.fields["Server Built"] == "2026-11-12T08:58:41"
    assert status.fields["ServerUptime"] == "4 seconds"
    assert status.fields["Scoreboard"].startswith("_W___")
    expected = [line.split(": ", 1)[0] for line in APACHE24.splitlines()[1:]]
    assert list(status.fields) == expected
    assert status.total_accesses == 23403
    assert status.restart_time == "Wednesday, 25-Nov-2026 00:12:06 UTC"
    assert status.uptime == 4
    assert status.req_per_sec == pytest.approx(5850.75)
    assert status.busy_workers == 1
    assert status.idle_workers == 49


def test_parse_uptime_zero_has_no_req_per_sec_and_empty_value() -> None:
    status = parse_status(APACHE24_UPTIME0, URL)
    assert status.fields["ServerUptime"] == ""
    assert status.req_per_sec is None
    assert status.uptime == 0
    assert status.total_accesses == 1


def test_parse_apache22_without_host_or_uptime_seconds() -> None:
    status = parse_status(APACHE22)
    assert status.host == ""
    assert status.total_accesses == 1297
    assert status.restart_time is None
    assert status.uptime == 1520  # falls back to Uptime
    assert status.req_per_sec == pytest.approx(0.853289)
    assert status.as_dict()["cpu_load"] == pytest.approx(0.0666667)


def test_parse_tls_lines() -> None:
    status = parse_status(APACHE24_TLS, URL)
    assert status.fields["CacheType"] == "SHMCB"
    assert status.fields["CacheUsage"] == "0%"
    assert "TLSSessionCacheStatus" not in status.fields  # a title line, not a field
    values = status.as_dict()
    assert values["cache_shared_memory"] == 512000
    assert values["cache_usage"] == "0%"
    assert values["server_version"] == "Apache/2.4.71 (Debian) OpenSSL/3.0.19"


def test_parse_crlf_and_surrounding_blank_lines() -> None:
    status = parse_status("\r\n" + APACHE24.replace("\n", "\r\n") + "\r\n")
    assert status.host == "127.0.0.1"
    assert status.total_accesses == 23403
    assert status.fields["Scoreboard"].endswith(".")


def test_as_dict_snake_cases_and_parses_numbers() -> None:
    values = parse_status(APACHE24, URL).as_dict()
    assert values["host"] == "127.0.0.1"
    assert values["total_accesses"] == 23403 and isinstance(values["total_accesses"], int)
    assert values["total_kbytes"] == 12052
    assert values["req_per_sec"] == pytest.approx(5850.75)
    assert values["busy_workers"] == 1
    assert values["cpu_load"] == 33 and isinstance(values["cpu_load"], int)
    assert values["cpu_user"] == pytest.approx(0.24)
    assert values["duration_per_req"] == pytest.approx(0.118147)
    assert values["cpu_children_system"] == 0
    assert values["conns_async_keep_alive"] == 0
    assert values["conns_async_wait_io"] == 0
    assert values["load1"] == pytest.approx(0.5)
    assert values["load15"] == pytest.approx(0.15)
    assert values["server_mpm"] == "event"
    assert values["parent_server_mpm_generation"] == 0
    assert values["server_uptime_seconds"] == 4
    assert values["server_uptime"] == "4 seconds"
    assert values["current_time"] == "Wednesday, 25-Nov-2026 00:12:10 UTC"
    assert values["server_built"] == "2026-11-12T08:58:41"
    assert len(values) == len(parse_status(APACHE24).fields) + 1


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Total Accesses", "total_accesses"),
        ("Total kBytes", "total_kbytes"),
        ("ReqPerSec", "req_per_sec"),
        ("BusyWorkers", "busy_workers"),
        ("CPULoad", "cpu_load"),
        ("CPUChildrenUser", "cpu_children_user"),
        ("ConnsAsyncKeepAlive", "conns_async_keep_alive"),
        ("ConnsAsyncWaitIO", "conns_async_wait_io"),
        ("Load1", "load1"),
        ("ServerMPM", "server_mpm"),
        ("ParentServerMPMGeneration", "parent_server_mpm_generation"),
        ("Server Built", "server_built"),
        ("TLSSessionCacheStatus", "tls_session_cache_status"),
        ("CacheIndexesPerSubcaches", "cache_indexes_per_subcaches"),
    ],
)
def test_snake_case(key: str, name: str) -> None:
    assert snake_case(key) == name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        (".0666667", 0.0666667),
        ("0.50", 0.5),
        ("5850.75", 5850.75),
        ("2.0", 2),
        ("-3", -3),
        ("1e3", 1000),
        ("0%", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("4 seconds", None),
    ],
)
def test_parse_number(text: str, value: int | float | None) -> None:
    result = parse_number(text)
    assert result == (pytest.approx(value) if isinstance(value, float) else value)
    if isinstance(value, int):
        assert isinstance(result, int)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "empty answer"),
        ("   \n\n", "empty answer"),
        (HTML_STATUS, "HTML server-status page, not the machine-readable ?auto form"),
        (HTML_OTHER, "HTML page, not a server-status page"),
        ("hello world\nthis is not it\n", "not a server-status page"),
        ("\x00\x01\x02garbage\xff\xfe", "not a server-status page"),
        ("{\"Total\": 1}", "not a server-status page"),
        (APACHE24_NO_EXTENDED, "ExtendedStatus On is needed"),
        ("Total Accesses: many\nBusyWorkers: 1\n", "Total Accesses is not a count"),
        ("Total Accesses: -5\n", "Total Accesses is not a count"),
        ("Total Accesses: 1.5\n", "Total Accesses is not a count"),
    ],
)
def test_parse_errors_name_the_url(body: str, words: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_status(body, URL)
    assert str(info.value).startswith(URL + ": ")
    assert words in str(info.value)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(StatusError, match="empty answer"):
        parse_status(None, URL)  # type: ignore[arg-type]


# -- status_url ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "auto"),
    [
        ("http://localhost/server-status", "http://localhost/server-status?auto"),
        ("  http://localhost/server-status  ", "http://localhost/server-status?auto"),
        ("http://localhost/server-status?auto", "http://localhost/server-status?auto"),
        ("http://localhost/server-status?auto=1", "http://localhost/server-status?auto=1"),
        ("http://localhost/server-status?refresh=5", "http://localhost/server-status?refresh=5&auto"),
        ("http://localhost/server-status?notable&auto", "http://localhost/server-status?notable&auto"),
        ("http://localhost/server-status?", "http://localhost/server-status?auto"),
        ("http://localhost/server-status#top", "http://localhost/server-status?auto"),
        ("https://127.0.0.1:8443/status", "https://127.0.0.1:8443/status?auto"),
        ("http://[::1]:8080/server-status", "http://[::1]:8080/server-status?auto"),
    ],
)
def test_status_url(url: str, auto: str) -> None:
    assert status_url(url) == auto
    assert status_url(status_url(url)) == auto


@pytest.mark.parametrize(
    "url",
    ["", "localhost/server-status", "ftp://localhost/server-status", "http:///server-status", "http://host:99999/x"],
)
def test_status_url_rejects(url: str) -> None:
    with pytest.raises(StatusError, match="URL"):
        status_url(url)


# -- current_rate ----------------------------------------------------------------

RT0 = "Mon, 01-Jan-2026 00:00:00 UTC"
RT1 = "Mon, 01-Jan-2026 00:05:00 UTC"


@pytest.mark.parametrize(
    ("prev", "cur", "own", "expected"),
    [
        # name: ((at, accesses, restart, uptime), ..., own_requests, (rate, restarted))
        pytest.param((0, 1000, RT0, 100), (10, 1501, RT0, 110), 1, (50.0, False), id="normal"),
        pytest.param((0, 1000, RT0, 100), (10, 1501, RT0, 110), 0, (50.1, False), id="no-own-subtraction"),
        pytest.param((0, 1000, RT0, 100), (10, 1503, RT0, 110), 3, (50.0, False), id="own-requests-3"),
        pytest.param((0, 1000, RT0, 100), (10, 1001, RT0, 110), 1, (0.0, False), id="only-own-fetch-is-zero"),
        pytest.param((0, 1000, RT0, 100), (10, 1000, RT0, 110), 1, (0.0, False), id="clamped-at-zero"),
        pytest.param((0, 1000, RT0, 100), (10, 1000, RT0, 110), 5, (0.0, False), id="clamped-many-own"),
        pytest.param((5, 1000, RT0, 100), (5, 1200, RT0, 100), 1, (None, False), id="zero-interval"),
        pytest.param((5, 1000, RT0, 100), (4, 1200, RT0, 100), 1, (None, False), id="negative-interval"),
        pytest.param((0, 5000, RT0, 100), (10, 40, RT1, 8), 1, (40 / 8.5, True), id="counter-down"),
        pytest.param((0, 5000, RT0, 100), (10, 6000, RT1, 9), 1, (6000 / 9.5, True), id="restart-time-changed"),
        pytest.param((0, 5000, RT0, 100), (10, 6000, RT0, 9), 1, (6000 / 9.5, True), id="uptime-went-down"),
        pytest.param((0, 5000, RT0, 100), (10, 40, RT1, 0), 1, (None, True), id="restart-uptime-zero"),
        pytest.param((0, 5000, RT0, 100), (10, 40, RT1, None), 1, (None, True), id="restart-uptime-unknown"),
        pytest.param((0, 5000, RT0, 100), (10, 40, RT0, 500), 1, (None, True), id="down-but-uptime-contradicts"),
        pytest.param((0, 1000, None, 100), (60, 1500, None, 140), 1, (None, True), id="22-uptime-grew-too-little"),
        pytest.param((0, 1000, None, 100), (60, 1601, None, 160), 1, (10.0, False), id="22-normal"),
        pytest.param((0, 1000, None, 100), (60, 1601, None, 159), 1, (10.0, False), id="22-uptime-rounding"),
        pytest.param((0, 1000, None, None), (60, 1601, None, None), 1, (10.0, False), id="no-uptime-at-all"),
        pytest.param((0, 1000, RT0, 100), (60, 1601, RT0, 100), 1, (10.0, False), id="24-uptime-frozen-trusts-restart-time"),
    ],
)
def test_current_rate(
    prev: tuple[float, int, str | None, int | None],
    cur: tuple[float, int, str | None, int | None],
    own: int,
    expected: tuple[float | None, bool],
) -> None:
    def sample(at: float, accesses: int, restart: str | None, uptime: int | None) -> Sample:
        fields = {"Total Accesses": str(accesses)}
        if restart is not None:
            fields["RestartTime"] = restart
        if uptime is not None:
            fields["ServerUptimeSeconds" if restart else "Uptime"] = str(uptime)
        return Sample(at=at, status=ServerStatus(host="h", fields=fields))

    rate, restarted = current_rate(sample(*prev), sample(*cur), own_requests=own)
    want_rate, want_restarted = expected
    assert restarted is want_restarted
    if want_rate is None:
        assert rate is None
    else:
        assert rate == pytest.approx(want_rate)
        assert rate >= 0


def test_current_rate_default_own_request_is_one() -> None:
    rate = current_rate(Sample(0, status_with(100)), Sample(2, status_with(111, uptime=102)))[0]
    assert rate == pytest.approx(5.0)


def test_current_rate_without_total_accesses() -> None:
    empty = ServerStatus(host="h", fields={})
    assert current_rate(Sample(0, empty), Sample(1, empty)) == (None, False)


# -- Load ------------------------------------------------------------------------


def test_load_signals() -> None:
    load = Load(rate=12.5, req_per_sec=300.0, busy_workers=7, idle_workers=43, interval=60.0, restarted=False, status=status_with(1))
    assert load.signal("rate") == 12.5
    assert load.signal("reqpersec") == 300.0
    assert load.signal("ReqPerSec") == 300.0
    assert load.signal("busy_workers") == 7.0
    assert set(SIGNALS) == {"rate", "reqpersec", "busy_workers"}
    with pytest.raises(ValueError, match="unknown load signal 'cpu'.*rate, reqpersec, busy_workers"):
        load.signal("cpu")


# -- LoadMeter with a fake fetch and a fake clock -------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeFetch:
    """Returns the queued statuses (or raises the queued errors) in turn."""

    def __init__(self, clock: FakeClock, fetch_seconds: float = 0.0) -> None:
        self.queue: list[ServerStatus | StatusError] = []
        self.calls: list[dict[str, t.Any]] = []
        self.clock = clock
        self.fetch_seconds = fetch_seconds

    def __call__(self, url: str, timeout: float, **kwargs: t.Any) -> ServerStatus:
        self.calls.append({"url": url, "timeout": timeout, **kwargs})
        self.clock.now += self.fetch_seconds
        item = self.queue.pop(0)
        if isinstance(item, StatusError):
            raise item
        return item


@pytest.fixture
def meter_parts() -> tuple[LoadMeter, FakeFetch, FakeClock]:
    clock = FakeClock()
    fetch = FakeFetch(clock)
    meter = LoadMeter(URL, timeout=3.0, fetch=fetch, clock=clock, username="balancer", password="s3cret", validate_certs=False)
    return meter, fetch, clock


def test_meter_baseline_then_rate(meter_parts: tuple[LoadMeter, FakeFetch, FakeClock]) -> None:
    meter, fetch, clock = meter_parts
    fetch.queue = [status_with(1000, uptime=100), status_with(1601, uptime=160)]
    first = meter.sample()
    assert first.rate is None and first.interval == 0 and not first.restarted
    assert first.req_per_sec == pytest.approx(10.0)
    assert first.busy_workers == 3 and first.idle_workers == 47
    clock.now += 60
    second = meter.sample()
    assert second.rate == pytest.approx(10.0)  # (1601 - 1000 - 1 own fetch) / 60
    assert second.interval == pytest.approx(60)
    assert second.signal("rate") == second.rate
    assert fetch.calls[0] == {"url": URL, "timeout": 3.0, "username": "balancer", "password": "s3cret", "validate_certs": False}
    assert "s3cret" not in repr(meter)


def test_meter_with_a_plain_fetch_stand_in() -> None:
    statuses = [status_with(10, uptime=1), status_with(31, uptime=3)]
    times = iter([0.0, 0.0, 2.0, 2.0])
    meter = LoadMeter(URL, fetch=lambda url, timeout: statuses.pop(0), clock=lambda: next(times))
    assert meter.sample().rate is None
    assert meter.sample().rate == pytest.approx(10.0)


def test_meter_sample_time_is_the_middle_of_the_fetch() -> None:
    clock = FakeClock()
    fetch = FakeFetch(clock, fetch_seconds=2.0)
    meter = LoadMeter(URL, fetch=fetch, clock=clock)
    fetch.queue = [status_with(0, uptime=10), status_with(101, uptime=20)]
    meter.sample()
    assert meter.last is not None and meter.last.at == pytest.approx(1001.0)
    clock.now += 8  # 10 s from the first reading's middle to the second's
    load = meter.sample()
    assert load.interval == pytest.approx(10.0)
    assert load.rate == pytest.approx(10.0)


def test_meter_failure_then_rate_against_last_good(meter_parts: tuple[LoadMeter, FakeFetch, FakeClock]) -> None:
    meter, fetch, clock = meter_parts
    fetch.queue = [
        status_with(1000, uptime=100),
        StatusError(f"{URL}: HTTP 500 Internal Server Error", answered=True),  # counted by Apache
        StatusError(f"{URL}: connection refused"),  # never reached it
        status_with(1000 + 1 + 1 + 1200, uptime=220),
    ]
    meter.sample()
    for dummy in range(2):
        clock.now += 60
        with pytest.raises(StatusError):
            meter.sample()
    clock.now += 60
    load = meter.sample()
    assert not load.restarted
    assert load.interval == pytest.approx(180)
    assert load.rate == pytest.approx(1200 / 180)  # own: last good fetch + the answered failure


def test_meter_restart_then_new_counting(meter_parts: tuple[LoadMeter, FakeFetch, FakeClock]) -> None:
    meter, fetch, clock = meter_parts
    fetch.queue = [
        status_with(50_000, uptime=1000),
        status_with(299, restart=RT1, uptime=29),
        status_with(299 + 1 + 600, restart=RT1, uptime=89),
    ]
    meter.sample()
    clock.now += 60
    load = meter.sample()
    assert load.restarted
    assert load.rate == pytest.approx(299 / 29.5)
    clock.now += 60
    after = meter.sample()
    assert not after.restarted
    assert after.rate == pytest.approx(10.0)


def test_meter_reset_gives_new_baseline(meter_parts: tuple[LoadMeter, FakeFetch, FakeClock]) -> None:
    meter, fetch, clock = meter_parts
    fetch.queue = [status_with(10, uptime=100), status_with(20, uptime=110)]
    meter.sample()
    meter.reset()
    clock.now += 10
    load = meter.sample()
    assert load.rate is None and load.interval == 0


def test_meter_bad_url_is_a_status_error() -> None:
    meter = LoadMeter("not a url")
    with pytest.raises(StatusError, match="not an http"):
        meter.sample()


# -- fetch_status against a tiny HTTP server on 127.0.0.1 --------------------------


class StatusHandler(http.server.BaseHTTPRequestHandler):
    release: threading.Event  # set at teardown: slow answers stop waiting
    seen_auth: list[str]

    def log_message(self, *args: t.Any) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, body: str | bytes, ctype: str = "text/plain; charset=ISO-8859-1") -> None:
        data = body.encode("latin-1") if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.seen_auth.append(self.headers.get("Authorization", ""))
        if path == "/server-status":
            if "auto" not in self.path:
                self._send(200, HTML_STATUS, "text/html")
            else:
                self._send(200, APACHE24)
        elif path == "/missing":
            self._send(404, "<html>Not Found</html>", "text/html")
        elif path == "/broken":
            self._send(500, "<html>Internal Server Error</html>", "text/html")
        elif path == "/forbidden":
            self._send(403, "<html>Forbidden</html>", "text/html")
        elif path == "/html":
            self._send(200, HTML_OTHER, "text/html")
        elif path == "/empty":
            self._send(200, "")
        elif path == "/plain":
            self._send(200, APACHE24_NO_EXTENDED)
        elif path == "/big":
            self._send(200, b"x" * (2 * 1024 * 1024))
        elif path == "/slow":
            self.release.wait(10)
            self._send(200, APACHE24)
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for dummy in range(100):
                if self.release.wait(0.1):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        elif path == "/auth":
            expected = "Basic " + base64.b64encode(b"balancer:s3cret").decode()
            if self.headers.get("Authorization") == expected:
                self._send(200, APACHE24)
            else:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="status"')
                self.send_header("Content-Length", "0")
                self.end_headers()
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/server-status?auto")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/hangup":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, "no")


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # a client that gave up (timeout, too big) breaks the pipe: expected here


class Server(t.NamedTuple):
    base: str
    handler: type[StatusHandler]


def _serve(tls_context: ssl.SSLContext | None = None) -> t.Iterator[Server]:
    release = threading.Event()
    handler = type("Handler", (StatusHandler,), {"release": release, "seen_auth": []})
    server = QuietServer(("127.0.0.1", 0), handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls_context else "http"
    try:
        yield Server(f"{scheme}://127.0.0.1:{server.server_address[1]}", handler)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def http_server() -> t.Iterator[Server]:
    yield from _serve()


def test_fetch_ok_adds_auto(http_server: Server) -> None:
    status = fetch_status(http_server.base + "/server-status")
    assert status.total_accesses == 23403
    assert status.host == "127.0.0.1"


def test_reads_share_one_opener(http_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each build_opener() makes a TLS context and loads the CA store (~20 ms, ~0.4 MB): once, not per read."""
    import urllib.request

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _status

    built = []
    real = urllib.request.build_opener
    monkeypatch.setattr(urllib.request, "build_opener", lambda *h: built.append(h) or real(*h))
    _status._opener.cache_clear()
    for dummy in range(3):
        assert fetch_status(http_server.base + "/server-status").total_accesses == 23403
    assert len(built) == 1
    _status._opener.cache_clear()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/missing", "HTTP 404 Not Found (is mod_status loaded and the URL right?)"),
        ("/broken", "HTTP 500 Internal Server Error"),
        ("/forbidden", "HTTP 403 Forbidden"),
        ("/html", "HTML page, not a server-status page"),
        ("/empty", "empty answer"),
        ("/plain", "ExtendedStatus On is needed"),
        ("/big", "answer larger than 1024 kB"),
        ("/auth", "HTTP 401 Unauthorized (wrong or missing username/password)"),
        ("/hangup", "closed the connection without an answer"),
    ],
)
def test_fetch_errors_name_the_url(http_server: Server, path: str, words: str) -> None:
    url = http_server.base + path
    with pytest.raises(StatusError) as info:
        fetch_status(url, timeout=5)
    message = str(info.value)
    assert message.startswith(url + "?auto: "), message
    assert words in message
    assert info.value.__cause__ is None  # no chained traceback for the user


def test_fetch_answered_flag(http_server: Server) -> None:
    for path in ("/missing", "/html"):
        with pytest.raises(StatusError) as info:
            fetch_status(http_server.base + path)
        assert info.value.answered


def test_fetch_timeout(http_server: Server) -> None:
    url = http_server.base + "/slow"
    with pytest.raises(StatusError) as info:
        fetch_status(url, timeout=0.3)
    assert str(info.value) == f"{url}?auto: timeout after 0.3 s"
    assert not info.value.answered


def test_fetch_slow_body_is_bounded(http_server: Server) -> None:
    url = http_server.base + "/drip"
    with pytest.raises(StatusError, match=r"timeout after 0\.5 s") as info:
        fetch_status(url, timeout=0.5)
    assert str(info.value).startswith(url)


def test_fetch_connection_refused() -> None:
    # A bound socket that does not listen: connections to its port are refused
    # and no other process can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/server-status"
        with pytest.raises(StatusError) as info:
            fetch_status(url, timeout=2)
    assert str(info.value) == f"{url}?auto: connection refused"


def test_fetch_basic_auth_never_shows_the_password(http_server: Server) -> None:
    status = fetch_status(http_server.base + "/auth", username="balancer", password="s3cret")
    assert status.total_accesses == 23403
    # Credentials in the URL move to the header and out of every message.
    host = http_server.base.split("//")[1]
    assert fetch_status(f"http://balancer:s3cret@{host}/auth").total_accesses == 23403
    with pytest.raises(StatusError) as info:
        fetch_status(f"http://balancer:wrong-s3cret@{host}/missing")
    assert "s3cret" not in str(info.value) and "balancer@" not in str(info.value)
    with pytest.raises(StatusError) as info:
        fetch_status(http_server.base + "/auth", username="balancer", password="wrong-s3cret")
    assert "s3cret" not in str(info.value)
    # Sent up front: one request per fetch, no 401 round trip.
    assert http_server.handler.seen_auth[0].startswith("Basic ")
    assert len(http_server.handler.seen_auth) == 4


def test_fetch_credentials_do_not_follow_redirects(http_server: Server) -> None:
    status = fetch_status(http_server.base + "/redirect", username="balancer", password="s3cret")
    assert status.total_accesses == 23403
    first, redirected = http_server.handler.seen_auth
    assert first.startswith("Basic ") and redirected == ""


@pytest.mark.parametrize("timeout", [0, -1, "5", float("nan"), True])
def test_fetch_bad_timeout(timeout: t.Any) -> None:
    with pytest.raises(StatusError, match="timeout must be a positive number"):
        fetch_status(URL, timeout=timeout)


def test_fetch_ignores_proxy_variables(http_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard port: would fail
    monkeypatch.setenv("no_proxy", "")
    assert fetch_status(http_server.base + "/server-status").total_accesses == 23403


@pytest.fixture
def tls_server(tmp_path: t.Any) -> t.Iterator[Server]:
    openssl = shutil.which("openssl")  # make setup installs it
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate: run make setup")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    yield from _serve(context)


def test_fetch_https_validate_certs(tls_server: Server) -> None:
    url = tls_server.base + "/server-status"
    with pytest.raises(StatusError) as info:
        fetch_status(url, timeout=5)
    assert str(info.value).startswith(url + "?auto: TLS certificate not trusted")
    assert fetch_status(url, timeout=5, validate_certs=False).total_accesses == 23403


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://user:secret@host/server-status", "http://user:***@host/server-status"),
        ("https://user:s3cr:et@host:8443/server-status?auto", "https://user:***@host:8443/server-status?auto"),
        ("http://:secret@host/", "http://:***@host/"),
        ("http://user@host/server-status", "http://user@host/server-status"),  # no password: nothing to hide
        ("http://localhost/a@b:c", "http://localhost/a@b:c"),  # '@' in the path is not user info
        ("notaurl", "notaurl"),
    ],
)
def test_masked_url(url, shown):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import mask_urls, masked_url

    assert masked_url(url) == shown
    assert mask_urls(f"server_status_url = {url} # note") == f"server_status_url = {shown} # note"
