# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Apache ``server-status?auto`` reader and the master's current request rate.

The original balancer scaled on Apache's ``ReqPerSec``, which is Total
Accesses divided by the server's uptime: a lifetime average that barely moves
after a day of uptime. The load here is the *current* rate, from two readings
of ``Total Accesses``::

    rate = (accesses now - accesses before - own requests) / seconds between

Apache facts this relies on (tests/system/test_load_apache.py checks them on
a real Apache 2.4):

- Every request counts as one access when it is logged, after its answer was
  sent; a server-status request does not count itself, the next reading does.
  So between two readings exactly one access is the meter's own (the earlier
  fetch), plus one for each failed fetch that the server answered.
- ``apache2 -k restart`` (SIGHUP) zeroes the counters and moves RestartTime;
  ``-k graceful`` (SIGUSR1, what a render farm change triggers) keeps both.
- Without ``ExtendedStatus On`` there is no Total Accesses line at all.
"""

from __future__ import annotations

import base64
import functools
import http.client
import math
import re
import socket
import ssl
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._url import split_http_url

#: Signals ``Load.signal`` knows: the current rate (default), Apache's
#: lifetime average (the original's measure, opt-in), busy workers.
SIGNALS = ("rate", "reqpersec", "busy_workers")

#: A status page is a few kB; anything far bigger is not one.
MAX_BODY = 1024 * 1024

_USER_AGENT = "gbrowse_aws_balancer (server-status reader)"
_KEY_VALUE = re.compile(r"^([A-Za-z][A-Za-z0-9 _./-]*?):(?: (.*)|)$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_SNAKE_OVERRIDES = {"Total kBytes": "total_kbytes"}
# Keys that only mod_status prints: a page with some but no Total Accesses
# is mod_status without ExtendedStatus.
_STATUS_KEYS = ("BusyWorkers", "IdleWorkers", "Scoreboard", "ServerMPM", "ServerUptimeSeconds")
# Slack for the uptime check of Apache 2.2-style pages (whole seconds, fetch
# latency): uptime that grew this much less than our clock did means a restart.
_UPTIME_SLACK = 2.0


class StatusError(Exception):
    """The status page could not be read or understood; the message names the URL.

    ``answered`` is True when the server sent an HTTP answer (an error status
    or a page that is not server-status): that request counted as an access.
    """

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


def snake_case(key: str) -> str:
    """``Total Accesses`` -> ``total_accesses``, ``CPULoad`` -> ``cpu_load``, ``Load1`` -> ``load1``."""
    if key in _SNAKE_OVERRIDES:
        return _SNAKE_OVERRIDES[key]
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key.strip())
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"[^A-Za-z0-9]+", "_", name)
    return name.strip("_").lower()


def parse_number(value: str) -> int | float | None:
    """``"12"`` -> 12, ``".0666667"`` -> 0.0666667, ``"2.0"`` -> 2; None if not a number."""
    text = value.strip()
    if not _NUMBER.match(text):
        return None
    number = float(text)
    if not math.isfinite(number):  # 1e999
        return None
    if number.is_integer():
        return int(text) if re.match(r"^[+-]?\d+$", text) else int(number)
    return number


def _as_int(value: str | None) -> int | None:
    number = parse_number(value) if value is not None else None
    return int(number) if isinstance(number, int) else None


def _as_float(value: str | None) -> float | None:
    number = parse_number(value) if value is not None else None
    return float(number) if number is not None else None


@dataclass(frozen=True)
class ServerStatus:
    """One ``?auto`` page: the host line and every ``Key: value`` line as printed."""

    host: str
    fields: dict[str, str] = field(hash=False)

    @property
    def total_accesses(self) -> int | None:
        return _as_int(self.fields.get("Total Accesses"))

    @property
    def restart_time(self) -> str | None:
        return self.fields.get("RestartTime")

    @property
    def uptime(self) -> int | None:
        """Seconds since the last (non-graceful) restart: ServerUptimeSeconds, else Uptime."""
        seconds = _as_int(self.fields.get("ServerUptimeSeconds"))
        return seconds if seconds is not None else _as_int(self.fields.get("Uptime"))

    @property
    def req_per_sec(self) -> float | None:
        """Apache's lifetime average (absent while the uptime is 0 s)."""
        return _as_float(self.fields.get("ReqPerSec"))

    @property
    def busy_workers(self) -> int | None:
        return _as_int(self.fields.get("BusyWorkers"))

    @property
    def idle_workers(self) -> int | None:
        return _as_int(self.fields.get("IdleWorkers"))

    def as_dict(self) -> dict[str, object]:
        """Every field snake_cased, numbers parsed, other values as strings, plus ``host``."""
        result: dict[str, object] = {}
        for key, value in self.fields.items():
            number = parse_number(value)
            result[snake_case(key)] = value if number is None else number
        result["host"] = self.host
        return result


def masked_url(url: str) -> str:
    """The URL as shown anywhere (messages, logs, summaries, module results): its password as ``***``.

    ``http://user:secret@host/server-status`` -> ``http://user:***@host/server-status``.
    Every place that shows a URL calls this one function.
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}{tail}"


_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@]*:[^\s/?#]*@[^\s]*")


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it masked (see :func:`masked_url`)."""
    return _URL_WITH_PASSWORD.sub(lambda m: masked_url(m.group(0)), text)


def status_url(url: str) -> str:
    """The ``?auto`` form of a server-status URL (an existing query is kept, ``auto`` not doubled)."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = split_http_url(text)
    except ValueError as exc:
        raise StatusError(
            f"{masked_url(text)!r} is not an http(s) server-status URL (like http://localhost/server-status): {exc}"
        ) from None
    params = [p for p in re.split(r"[&;]", parts.query) if p]
    if not any(p == "auto" or p.startswith("auto=") for p in params):
        params.append("auto")
    return urllib.parse.urlunsplit(parts._replace(query="&".join(params), fragment=""))


def parse_status(text: str, url: str = "") -> ServerStatus:
    """Parse a ``server-status?auto`` page; StatusError when it is not one we can use."""
    where = f"{masked_url(url)}: " if url else ""
    if not isinstance(text, str) or not text.strip():
        raise StatusError(f"{where}empty answer, not a server-status page")
    head = text.lstrip()[:2000].lower()
    if head.startswith("<") or "<html" in head or "<!doctype" in head:
        if "apache status" in head or "server-status" in head:
            raise StatusError(f"{where}got the HTML server-status page, not the machine-readable ?auto form")
        raise StatusError(f"{where}got an HTML page, not a server-status page (is the URL right?)")
    lines = text.replace("\r\n", "\n").split("\n")
    host = ""
    fields: dict[str, str] = {}
    first = True
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        match = _KEY_VALUE.match(line)
        if match:
            fields[match.group(1)] = (match.group(2) or "").strip()
        elif first:
            # Apache 2.4 starts with the bare host name; 2.2 has no such line.
            host = line
        # Other lines without a colon are section titles (TLSSessionCacheStatus).
        first = False
    if "Total Accesses" not in fields:
        if any(key in fields for key in _STATUS_KEYS):
            raise StatusError(
                f"{where}server-status has no Total Accesses: ExtendedStatus On is needed in Apache's configuration"
            )
        raise StatusError(f"{where}not a server-status page (no Total Accesses line)")
    accesses = _as_int(fields["Total Accesses"])
    if accesses is None or accesses < 0:
        raise StatusError(f"{where}Total Accesses is not a count: {fields['Total Accesses'][:40]!r}")
    return ServerStatus(host=host, fields=fields)


def _describe(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed fetch."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
        return f"timeout after {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):  # a ConnectionResetError too
        return "the server closed the connection without an answer"
    if isinstance(reason, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror or reason})"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message or reason}; validate_certs=False skips the check)"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason})"
    if isinstance(reason, http.client.HTTPException):
        return f"not an HTTP answer ({type(reason).__name__}: {reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


_HTTP_HINTS = {
    401: "wrong or missing username/password",
    403: "mod_status answers only allowed clients: check `Require` in <Location /server-status>",
    404: "is mod_status loaded and the URL right?",
}


def fetch_status(
    url: str,
    timeout: float = 5.0,
    *,
    username: str | None = None,
    password: str | None = None,
    validate_certs: bool = True,
) -> ServerStatus:
    """GET the ``?auto`` page and parse it; StatusError (naming the URL, never the password) on failure.

    Basic auth is sent up front, so no 401 round trip adds an access. Proxy
    variables from the environment are ignored: the status page is the
    master's own. ``timeout`` bounds each network wait, and reading the body
    as a whole.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise StatusError(f"{masked_url(str(url))}: the timeout must be a positive number of seconds, not {timeout!r}")
    target = status_url(url)
    parts = urllib.parse.urlsplit(target)
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL: move them to the header, out of the URL.
        if username is None:
            username = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "") if password is None else password
        target = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    shown = target
    opener = _opener(validate_certs)
    request = urllib.request.Request(target, headers={"User-Agent": _USER_AGENT, "Accept": "text/plain"}, method="GET")
    if username is not None:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
        # Unredirected: a redirect elsewhere never carries the credentials along.
        request.add_unredirected_header("Authorization", f"Basic {token}")
    deadline = time.monotonic() + timeout
    answered = False
    try:
        with opener.open(request, timeout=timeout) as response:
            answered = True
            body = _read_body(response, deadline, timeout, shown)
            charset = response.headers.get_content_charset() or "latin-1"
    except StatusError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        hint = _HTTP_HINTS.get(exc.code)
        reason = f"HTTP {exc.code} {exc.reason}".rstrip()
        raise StatusError(f"{shown}: {reason}" + (f" ({hint})" if hint else ""), answered=True) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise StatusError(f"{shown}: {_describe(exc, timeout)}", answered=answered) from None
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("latin-1")
    try:
        return parse_status(text, shown)
    except StatusError as exc:
        raise StatusError(str(exc), answered=True) from None


@functools.lru_cache(maxsize=None)
def _opener(validate_certs: bool) -> urllib.request.OpenerDirector:
    """The status reader's opener, built once per ``validate_certs``: no proxy, its own TLS context.

    Building one per read made a new TLS context each time, loading the system's
    CA store: about 20 ms of CPU and 0.4 MB of memory per poll (bench/README.md,
    "Footprint"). The opener keeps no state between requests.
    """
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))


def _read_body(response: t.Any, deadline: float, timeout: float, shown: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise StatusError(f"{shown}: timeout after {timeout:g} s (answer too slow)", answered=True)
        # read1: at most one network read, so the deadline is checked often.
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            raise StatusError(
                f"{shown}: answer larger than {MAX_BODY // 1024} kB, not a server-status page", answered=True
            )
        chunks.append(chunk)


@dataclass(frozen=True)
class Sample:
    """A status page and when it was read (monotonic seconds)."""

    at: float
    status: ServerStatus


def _restarted(prev: ServerStatus, cur: ServerStatus, interval: float) -> bool:
    before, now = prev.total_accesses, cur.total_accesses
    if before is not None and now is not None and now < before:
        return True
    has_restart_time = prev.restart_time is not None and cur.restart_time is not None
    if has_restart_time and prev.restart_time != cur.restart_time:
        return True
    up_before, up_now = prev.uptime, cur.uptime
    if up_before is None or up_now is None:
        return False
    if up_now < up_before:
        return True
    # Apache 2.2 pages have no RestartTime: an uptime that grew clearly less
    # than our clock did means the server started again in between.
    grew_too_little = (up_now - up_before) < interval - _UPTIME_SLACK - 0.1 * interval
    return not has_restart_time and interval > 0 and grew_too_little


def current_rate(prev: Sample, cur: Sample, own_requests: int = 1) -> tuple[float | None, bool]:
    """The current request rate between two samples, and whether Apache restarted in between.

    ``own_requests`` is how many of the accesses in between were the meter's
    own status fetches (1: the fetch of ``prev``). Never negative. After a
    restart the rate is the accesses since the restart over the uptime since
    then (uptime is whole seconds, truncated: half a second is added), or None
    when that is unknown, zero, or longer than the interval (then the pages
    contradict each other and no rate is better than a bogus one). A zero or
    negative interval gives None.
    """
    interval = cur.at - prev.at
    before, now = prev.status.total_accesses, cur.status.total_accesses
    restarted = _restarted(prev.status, cur.status, interval)
    if now is None:
        return None, restarted
    if restarted:
        uptime = cur.status.uptime
        if uptime is None or uptime <= 0 or (interval > 0 and uptime > interval + _UPTIME_SLACK):
            return None, True
        return max(0, now) / (uptime + 0.5), True
    if before is None or interval <= 0:
        return None, False
    own = max(0, int(own_requests))
    return max(0, now - before - own) / interval, False


@dataclass(frozen=True)
class Load:
    """The master's load at one poll."""

    rate: float | None  # current req/s; None on the baseline sample
    req_per_sec: float | None  # Apache's lifetime average: display, opt-in signal
    busy_workers: int | None
    idle_workers: int | None
    interval: float  # seconds since the previous sample (0 for the baseline)
    restarted: bool  # Apache restarted between the two samples
    status: ServerStatus

    def signal(self, name: str) -> float | None:
        """The value of one load signal: ``rate``, ``reqpersec`` or ``busy_workers``."""
        key = str(name).strip().lower().replace("-", "_")
        if key == "rate":
            return self.rate
        if key in ("reqpersec", "req_per_sec"):
            return self.req_per_sec
        if key == "busy_workers":
            return None if self.busy_workers is None else float(self.busy_workers)
        raise ValueError(f"unknown load signal {name!r} (known: {', '.join(SIGNALS)})")


class LoadMeter:
    """Samples the status page and turns each reading into a :class:`Load`.

    The first successful sample (and the first after ``reset()``) is the
    baseline: ``rate`` is None. A failed fetch raises StatusError and changes
    nothing but a count: the next successful sample is computed against the
    last good one, over the whole time since then (a true average, never a
    made-up figure), with each failed fetch that the server answered counted
    as one more own request. A restart in between is detected as usual.

    ``fetch`` has fetch_status's signature; it is called as
    ``fetch(url, timeout)`` plus only the credential options that were given.
    ``clock`` is read before and after each fetch: a sample's time is the
    middle of its fetch.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        fetch: t.Callable[..., ServerStatus] = fetch_status,
        clock: t.Callable[[], float] = time.monotonic,
        username: str | None = None,
        password: str | None = None,
        validate_certs: bool = True,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._fetch = fetch
        self._clock = clock
        # Only the options that were given reach ``fetch``, so a stand-in
        # ``fetch(url, timeout)`` is enough for a meter without credentials.
        self._options: dict[str, t.Any] = {}
        if username is not None:
            self._options["username"] = username
        if password is not None:
            self._options["password"] = password
        if not validate_certs:
            self._options["validate_certs"] = False
        self._last: Sample | None = None
        self._answered_failures = 0

    def __repr__(self) -> str:  # never shows the password
        return f"LoadMeter({masked_url(self.url)!r}, timeout={self.timeout!r})"

    @property
    def last(self) -> Sample | None:
        """The last good sample, or None before the baseline."""
        return self._last

    def reset(self) -> None:
        """Forget the previous sample: the next one is a new baseline."""
        self._last = None
        self._answered_failures = 0

    def sample(self) -> Load:
        """Fetch the status page and compute the load against the previous sample."""
        started = self._clock()
        try:
            status = self._fetch(self.url, self.timeout, **self._options)
        except StatusError as exc:
            if getattr(exc, "answered", False):
                self._answered_failures += 1
            raise
        # Apache reads its scoreboard somewhere during the fetch: the middle
        # is the best estimate of when this reading was taken.
        current = Sample(at=(started + self._clock()) / 2, status=status)
        previous, self._last = self._last, current
        own = 1 + self._answered_failures
        self._answered_failures = 0
        if previous is None:
            rate, restarted, interval = None, False, 0.0
        else:
            interval = current.at - previous.at
            rate, restarted = current_rate(previous, current, own_requests=own)
        return Load(
            rate=rate,
            req_per_sec=status.req_per_sec,
            busy_workers=status.busy_workers,
            idle_workers=status.idle_workers,
            interval=interval,
            restarted=restarted,
            status=status,
        )
