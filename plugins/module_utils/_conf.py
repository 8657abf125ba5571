# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""aws_balancer.conf: read it, validate it, edit it keeping every other byte.

The format is the original balancer's: ``[NAME]`` sections (names in any
case), ``#`` comment lines, trailing comments after whitespace and ``#``,
a ``[LOAD TABLE]`` of ``threshold min max`` rows, and ``key = value`` lines in
``[MASTER]`` and ``[SLAVE]``; an empty value means "unset". Unlike the
original, every mistake is reported, all at once, as ``FILE:LINE: message``.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import math
import os
import posixpath
import re
import stat
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import write_atomic
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import MARGIN, SCALE_IN_WINDOW
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import LoadRow, PollSettings, data_generation
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._lines import canonical_section, raw_lines, split_lines
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import parse_listen
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import masked_url
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._url import NOT_HTTP_URL, is_http_url, split_http_url

if t.TYPE_CHECKING:  # _gbrowse_layout reads GBrowse.conf with _renderfarm, which imports this module
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import GBrowseLayout

LOAD_TABLE = "LOAD TABLE"
MASTER = "MASTER"
SLAVE = "SLAVE"
SECTIONS = (LOAD_TABLE, MASTER, SLAVE)

_BOM = "\ufeff"

#: The largest aws_balancer.conf read (the shipped one is 2 KiB): more is refused, never read whole.
MAX_CONF_BYTES = 1024 * 1024
#: The most errors listed for one file; the rest are counted.
MAX_ERRORS = 20

# Documented bounds (README "aws_balancer.conf", docs/balancer.md); the daemon,
# --check-config and the modules all refuse values outside them.
MAX_SLAVES = 1000  # load table min/max
MAX_ROWS = 100  # load table rows
MAX_THRESHOLD = 1e9  # requests/sec

#: Where the daemon keeps its state file (``gbrowse_aws_balancer status`` reads it) unless
#: ``state_file`` says otherwise: the role's unit makes it (RuntimeDirectory=), world-readable.
STATE_DIR = "/run/gbrowse-aws-balancer"
#: Rotated copies of the history kept (``history_file.1`` .. ``.3``).
HISTORY_KEEP = 3


class ConfError(Exception):
    """aws_balancer.conf is missing, unreadable or wrong; ``errors`` lists every problem."""

    def __init__(self, errors: str | t.Sequence[str]) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))

    def __str__(self) -> str:
        return "\n".join(self.errors)


@dataclass(frozen=True)
class MasterConf:
    """``[MASTER]``: the GBrowse server the balancer runs on."""

    external_ip: str | None = None
    poll_interval: float = 0.5  # minutes
    server_status_url: str = "http://localhost/server-status"
    balancer_id: str | None = None  # None: default_balancer_id()
    renderfarm_conf: str | None = None  # None: renderfarm.conf in GBrowse's configuration directory
    reload_command: str = "apache2ctl graceful"  # "" (set empty): no reload, for CGI-only masters
    on_exit: str = "terminate"
    load_signal: str = "rate"
    scaling_policy: str = "adaptive"
    scale_in_delay: float = 0.0  # minutes; 0 = off
    scale_in_window: float = SCALE_IN_WINDOW / 60  # minutes of load the adaptive policy's scale-in percentile looks at
    load_margin: float = MARGIN  # standard deviations of the load's noise the adaptive policy adds to it
    max_launch_per_poll: int | None = None  # None = no limit
    status_timeout: float = 5.0  # seconds
    state_file: str | None = None  # None: STATE_DIR/<balancer id>.json (resolved_state_file)
    history_file: str | None = None  # None: no history
    history_max_bytes: int = 10 * 1024 * 1024  # then rotated, HISTORY_KEEP copies kept
    max_hourly_spend: float | None = None  # USD/hour for the whole fleet; None = no cap
    on_demand_fallback: int = 0  # polls of spot capacity errors before on-demand slaves; 0 = never
    interruption_queue: str | None = None  # SQS queue URL EventBridge sends EC2's interruption events to
    metrics_listen: str | None = None  # HOST:PORT of the Prometheus /metrics; None = no metrics


@dataclass(frozen=True)
class SlaveConf:
    """``[SLAVE]``: the render slaves the balancer launches."""

    instance_types: tuple[str, ...] = ("m1.large",)
    spot_bid: float = 0.08
    ports: tuple[int, ...] = (8101,)
    region: str | None = None
    image_id: str | None = None
    data_snapshots: tuple[str, ...] = ()
    availability_zone: str | None = None
    subnet: str | None = None
    security_group: str | None = None
    address: str = "auto"
    ready_timeout: float = 5.0  # minutes
    ready_misses: int = 3  # consecutive slow readiness checks before a ready slave leaves the farm
    drain_time: float = 60.0  # seconds a scaled-in slave stays up after it left the farm
    refresh_batch: int = 1  # slaves replaced at a time after image_id or data_snapshots changed; 0: never
    on_demand_price: float | None = None  # USD/hour an on-demand slave may cost (and is counted at)


@dataclass(frozen=True)
class BalancerConf:
    """A valid aws_balancer.conf."""

    path: str
    table: tuple[LoadRow, ...]
    master: MasterConf
    slave: SlaveConf

    def resolved_balancer_id(self, hostname: str) -> str:
        """The configured ``balancer_id``, or the one derived from the host name and this file's path."""
        return self.master.balancer_id or default_balancer_id(hostname, self.path)

    def resolved_renderfarm_conf(self, gbrowse_conf_dir: str) -> str:
        """The configured ``renderfarm_conf``, or renderfarm.conf in GBrowse's configuration directory."""
        return self.master.renderfarm_conf or posixpath.join(gbrowse_conf_dir, "renderfarm.conf")

    def resolved_state_file(self, hostname: str) -> str:
        """The configured ``state_file``, or ``STATE_DIR/<balancer id>.json``.

        The one rule for where the state file is: the daemon writes it and
        ``gbrowse_aws_balancer status`` reads it through this, from the same conf.
        """
        return self.master.state_file or posixpath.join(STATE_DIR, f"{self.resolved_balancer_id(hostname)}.json")

    def poll_settings(self) -> PollSettings:
        """What of this conf the poll's decision (:func:`._decision.decide`) reads."""
        return PollSettings(
            ports=self.slave.ports,
            max_launch=self.master.max_launch_per_poll,
            drain_time=self.slave.drain_time,
            generation=data_generation(self.slave.image_id, self.slave.data_snapshots),
            refresh_batch=self.slave.refresh_batch,
            max_hourly_spend=self.master.max_hourly_spend,
            spot_bid=self.slave.spot_bid,
            on_demand_fallback=self.master.on_demand_fallback,
            on_demand_price=self.slave.on_demand_price,
        )


_BALANCER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def default_balancer_id(hostname: str, conf_path: str) -> str:
    """A stable id for the balancer of ``conf_path`` on ``hostname``: ``SHORTHOST-HASH8``.

    Two balancers on one host (two conf files) get different ids; the same
    conf on the same host always gets the same one.
    """
    short = re.sub(r"[^A-Za-z0-9_-]+", "-", hostname.split(".")[0]).strip("-")[:55] or "gbrowse"
    digest = hashlib.sha256(os.path.abspath(conf_path).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{short}-{digest[:8]}"


# ---------------------------------------------------------------------------
# Values


class _Invalid(Exception):
    """A value is wrong; the message does not name the key (the caller adds it)."""


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,64}", re.ASCII)


def _number(text: str) -> float:
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        raise _Invalid(f"{text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise _Invalid(f"{text!r} is too large")
    return value


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        if _NUMBER.fullmatch(text) and len(text) <= 64:
            raise _Invalid(f"{text!r} is not a whole number")
        raise _Invalid(f"{text!r} is not a number")
    return int(text)


def _between(low: float, high: float, unit: str = "", *, whole: bool = False) -> t.Callable[[str], t.Any]:
    """A number (a whole number with ``whole``) from ``low`` to ``high``, both included; ``unit`` for the message."""
    unit = f" {unit}" if unit else ""
    parse = _integer if whole else _number

    def convert(text: str) -> float:
        value = parse(text)
        if not low <= value <= high:
            raise _Invalid(f"{text!r} must be from {low:g} to {high:g}{unit}")
        return value

    return convert


_threshold = _between(0, MAX_THRESHOLD, "requests/sec")


def _ip_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise _Invalid(f"{text!r} is not an IP address") from None
    return text


def _url(text: str) -> str:
    if not is_http_url(text):
        raise _Invalid(f"{masked_url(text)!r} {NOT_HTTP_URL}")
    return text


_QUEUE_PATH = re.compile(r"/[0-9]{12}/[A-Za-z0-9_-]{1,80}(?:\.fifo)?", re.ASCII)


def _queue_url(text: str) -> str:
    """An SQS queue URL as CreateQueue returns it: ``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``."""
    parts = split_http_url(_url(text))
    if not _QUEUE_PATH.fullmatch(parts.path) or parts.query or parts.username:
        raise _Invalid(f"{text!r} is not an SQS queue URL like https://sqs.us-west-2.amazonaws.com/123456789012/name")
    return text


def _balancer_id(text: str) -> str:
    if not _BALANCER_ID.fullmatch(text):
        raise _Invalid(f"{text!r} must be 1 to 64 of the characters A-Z a-z 0-9 . _ -")
    return text


def _absolute_path(text: str) -> str:
    if not posixpath.isabs(text) or "\0" in text:
        raise _Invalid(f"{text!r} is not an absolute path")
    return text


def _listen(text: str) -> str:
    try:
        parse_listen(text)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return text


def _text(text: str) -> str:
    return text


def _image(text: str) -> str:
    if len(text) > 128:
        raise _Invalid("an image id or name has at most 128 characters")
    return text


def _choice(*allowed: str) -> t.Callable[[str], str]:
    def convert(text: str) -> str:
        if text.lower() not in allowed:
            raise _Invalid(f"{text!r} is not one of {', '.join(allowed)}{_did_you_mean(text.lower(), allowed)}")
        return text.lower()

    return convert


def _did_you_mean(word: str, choices: t.Iterable[str], show: t.Callable[[str], str] = repr) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {show(close[0])}?" if close else ""


def _words(pattern: str, what: str) -> t.Callable[[str], tuple[str, ...]]:
    """A space-separated list of distinct words each matching ``pattern``."""
    regex = re.compile(pattern, re.ASCII)

    def convert(text: str) -> tuple[str, ...]:
        words = text.split()
        problems = [f"{w!r} is not {what}" for w in words if not regex.fullmatch(w)]
        problems += [f"{w!r} is listed twice" for i, w in enumerate(words) if w in words[:i]]
        if problems:
            raise _Invalid("; ".join(problems))
        return tuple(words)

    return convert


def _word(pattern: str, what: str) -> t.Callable[[str], str]:
    """A single word matching ``pattern``."""
    regex = re.compile(pattern, re.ASCII)

    def convert(text: str) -> str:
        if len(text.split()) > 1:
            raise _Invalid(f"{text!r} must be a single value")
        if not regex.fullmatch(text):
            raise _Invalid(f"{text!r} is not {what}")
        return text

    return convert


def _ports(text: str) -> tuple[int, ...]:
    ports: list[int] = []
    problems = []
    for word in text.split():
        try:
            port = _integer(word)
        except _Invalid:
            problems.append(f"{word!r} is not a port number (1-65535)")
            continue
        if not 1 <= port <= 65535:
            problems.append(f"{word!r} is not a port number (1-65535)")
        elif port in ports:
            problems.append(f"{word!r} is listed twice")
        else:
            ports.append(port)
    if problems:
        raise _Invalid("; ".join(problems))
    return tuple(ports)


def _security_group(text: str) -> str:
    if len(text) > 255:
        raise _Invalid("a security group name has at most 255 characters")
    return text


@dataclass(frozen=True)
class _Key:
    """One ``key = value`` setting: its name in the file, its field, its parser."""

    name: str
    field: str
    convert: t.Callable[[str], object]
    empty: object = None  # what an empty value sets; None: the key is unset (its default applies)


_KEYS: dict[str, tuple[_Key, ...]] = {
    MASTER: (
        _Key("external_ip", "external_ip", _ip_address),
        _Key("poll_interval", "poll_interval", _between(0.01, 1440, "minutes")),
        _Key("server_status_url", "server_status_url", _url),
        _Key("balancer_id", "balancer_id", _balancer_id),
        _Key("renderfarm_conf", "renderfarm_conf", _absolute_path),
        _Key("reload_command", "reload_command", _text, empty=""),
        _Key("on_exit", "on_exit", _choice("terminate", "keep")),
        _Key("load_signal", "load_signal", _choice("rate", "reqpersec", "busy_workers")),
        _Key("scaling_policy", "scaling_policy", _choice("adaptive", "immediate")),
        _Key("scale_in_delay", "scale_in_delay", _between(0, 1440, "minutes")),
        # The adaptive policy's two trade-offs of slave-hours against time under-provisioned
        # (docs/balancer.md, "Tuning"); ignored by scaling_policy = immediate.
        _Key("scale_in_window", "scale_in_window", _between(0, 1440, "minutes")),
        _Key("load_margin", "load_margin", _between(0, 10, "standard deviations")),
        _Key("max_launch_per_poll", "max_launch_per_poll", _between(1, MAX_SLAVES, whole=True)),
        _Key("status_timeout", "status_timeout", _between(0.1, 300, "seconds")),
        _Key("state_file", "state_file", _absolute_path),
        _Key("history_file", "history_file", _absolute_path),
        # At least a few polls' lines (one is 1-3 KiB) per file; at most what a post-mortem reads.
        _Key("history_max_bytes", "history_max_bytes", _between(4096, 1e9, "bytes", whole=True)),
        _Key("max_hourly_spend", "max_hourly_spend", _between(0.001, 100000, "USD/hour")),
        _Key("on_demand_fallback", "on_demand_fallback", _between(0, 1000, "polls", whole=True)),
        _Key("interruption_queue", "interruption_queue", _queue_url),
        # Any address: listening beyond localhost is the admin's choice (docs/metrics.md).
        _Key("metrics_listen", "metrics_listen", _listen),
    ),
    SLAVE: (
        _Key(
            "instance_type", "instance_types", _words(r"[a-z][a-z0-9-]*\.[a-z0-9-]+", "an instance type like m5.large")
        ),
        _Key("spot_bid", "spot_bid", _between(0.001, 1000, "USD/hour")),
        _Key("ports", "ports", _ports),
        _Key("region", "region", _word(r"[a-z]{2}(?:-[a-z]+)+-[0-9]+", "a region like us-west-2")),
        _Key("image_id", "image_id", _image),
        _Key("data_snapshots", "data_snapshots", _words(r"snap-[0-9a-f]+", "a snapshot id like snap-0123abcd")),
        _Key(
            "availability_zone",
            "availability_zone",
            _word(r"[a-z]{2}(?:-[a-z0-9]+)+[a-z]", "an availability zone like us-west-2a"),
        ),
        _Key("subnet", "subnet", _word(r"subnet-[0-9a-f]+", "a subnet id like subnet-0123abcd")),
        _Key("security_group", "security_group", _security_group),
        _Key("address", "address", _choice("auto", "private", "public")),
        _Key("ready_timeout", "ready_timeout", _between(0.01, 1440, "minutes")),
        # At most a count that keeps a hung slave in the farm for minutes, not hours.
        _Key("ready_misses", "ready_misses", _between(1, 20, whole=True)),
        # Longer than GBrowse's longest render: a request that read the farm
        # before the slave left it still gets its answer.
        _Key("drain_time", "drain_time", _between(0, 3600, "seconds")),
        _Key("refresh_batch", "refresh_batch", _between(0, MAX_SLAVES, whole=True)),
        # No price list offline: the admin says what an on-demand slave costs at most
        # (EC2 is told too, as the fleet's MaxTotalPrice).
        _Key("on_demand_price", "on_demand_price", _between(0.001, 1000, "USD/hour")),
    ),
}


def conf_keys() -> dict[str, tuple[str, ...]]:
    """Every ``key = value`` name per section, in the schema's order: what other lists of them are checked
    against (the role's template and argument specs: tests/unit/test_role_conf_keys.py)."""
    return {section: tuple(key.name for key in keys) for section, keys in _KEYS.items()}


#: Keys a running balancer reads only when it starts: a reload (SIGHUP, a changed file)
#: applies every other key, and logs these when they changed (:func:`start_only_changes`).
START_ONLY: dict[str, tuple[str, ...]] = {
    MASTER: (
        "external_ip",
        "balancer_id",
        "state_file",
        "history_file",
        "history_max_bytes",
        "interruption_queue",
        "metrics_listen",
    ),
    SLAVE: ("region",),
}


def start_only_changes(started: BalancerConf, new: BalancerConf, hostname: str) -> list[str]:
    """The :data:`START_ONLY` keys whose value in ``new`` differs from the one the balancer started with.

    ``balancer_id`` and ``state_file`` are compared as resolved (a derived id
    changes with the conf's path, too).
    """

    def value(conf: BalancerConf, section: str, name: str) -> object:
        if name == "balancer_id":
            return conf.resolved_balancer_id(hostname)
        if name == "state_file":
            return conf.resolved_state_file(hostname)
        return getattr(conf.master if section == MASTER else conf.slave, t.cast(_Key, _key(section, name)).field)

    changed = []
    for section, names in START_ONLY.items():
        changed += [name for name in names if value(started, section, name) != value(new, section, name)]
    return changed


def _key(section: str, name: str) -> _Key | None:
    for key in _KEYS.get(section, ()):
        if key.name == name:
            return key
    return None


# ---------------------------------------------------------------------------
# Lines


@dataclass
class _Line:
    """One physical line, classified. Offsets index ``text`` (the line without its ending)."""

    number: int
    text: str
    eol: str
    kind: str  # blank | comment | header | row | entry | other
    section: str | None  # canonical name of the section it is in (header: the one it opens)
    name: str = ""  # header: canonical section name; entry: the key
    body: str = ""  # the text without its trailing comment, stripped
    eq: int = -1  # entry: offset of '='
    vstart: int = 0  # entry: value span
    vend: int = 0
    hash_at: int = -1  # offset of the trailing comment's '#', -1 when none
    junk: str = ""  # header: text after ']'
    malformed: bool = False  # header: no closing ']'

    @property
    def value(self) -> str:
        return self.text[self.vstart:self.vend]


_TRAILING_COMMENT = re.compile(r"\s#")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER = re.compile(r"\[([^\]]*)\](.*)", re.S)


def _scan(text: str) -> list[_Line]:
    lines = []
    section: str | None = None
    for raw in raw_lines(text):
        content = raw.text
        line = _Line(raw.number, content, raw.eol, "other", section)
        if raw.kind != "code":
            line.kind = raw.kind
        else:
            found = _TRAILING_COMMENT.search(content)
            code = content[: found.start()] if found else content
            if found:
                line.hash_at = found.end() - 1
            line.body = code.strip()
            if line.body.startswith("["):
                line.kind = "header"
                match = _HEADER.fullmatch(line.body)
                if match:
                    line.name = canonical_section(match.group(1))
                    line.junk = match.group(2).strip()
                    section = line.section = line.name
                else:
                    line.malformed = True
            elif section == LOAD_TABLE:
                line.kind = "row"
            elif "=" in code:
                line.kind = "entry"
                line.eq = code.index("=")
                line.name = code[: line.eq].strip()
                after = code[line.eq + 1:]
                line.vend = len(code.rstrip())
                line.vstart = min(line.eq + 1 + len(after) - len(after.lstrip()), line.vend)
                line.vend = max(line.vend, line.vstart)
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------
# Reading


def parse_conf(text: str, path: str) -> BalancerConf:
    """Parse and validate the text of an aws_balancer.conf; ``path`` is for messages.

    Raises ConfError listing every problem found, each ``PATH:LINE: message``
    (``PATH: message`` for something missing altogether).
    """
    return _Parser(path).parse(text[1:] if text.startswith(_BOM) else text)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []
        self.headers: dict[str, int] = {}  # canonical section -> line of its first header
        self.rows: list[LoadRow] = []
        self.row_lines = 0
        self.last: tuple[float, int] | None = None  # (threshold, line) of the last row in ascending order
        self.values: dict[str, dict[str, object]] = {MASTER: {}, SLAVE: {}}  # field -> value
        self.seen: dict[str, dict[str, int]] = {MASTER: {}, SLAVE: {}}  # key -> first line
        self.binary = False  # a line with control characters: sections may be hidden in it

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.path}:{line}: {message}")

    def parse(self, text: str) -> BalancerConf:
        current: str | None = None  # None: before any section; "": an unknown section
        told_before_first = False
        for line in _scan(text):
            control = _CONTROL.search(line.text)
            if control:
                self.error(line.number, f"control character U+{ord(control.group()):04X} (only text, tabs and line ends)")
                self.binary = True
                continue
            if line.kind in ("blank", "comment"):
                continue
            if line.kind == "header":
                if line.malformed:
                    self.error(line.number, f"malformed section header {line.body!r} (missing ']')")
                    current = ""  # its lines are not checked against the section before it
                    continue
                current = self.header(line)
            elif current is None:
                if not told_before_first:
                    self.error(line.number, "text before the first section; expected [LOAD TABLE], [MASTER] or [SLAVE]")
                    told_before_first = True
            elif current == LOAD_TABLE:
                self.row(line)
            elif current in (MASTER, SLAVE):
                self.entry(current, line)
        return self.finish()

    def header(self, line: _Line) -> str:
        name = line.name
        if line.junk:
            self.error(line.number, f"unexpected text {line.junk!r} after [{name}]")
        if not name:
            self.error(line.number, "empty section name []")
            return ""
        if name not in SECTIONS:
            hint = _did_you_mean(name, SECTIONS, show=lambda s: f"[{s}]")
            self.error(line.number, f"unknown section [{name}]{hint}; known sections: [LOAD TABLE], [MASTER], [SLAVE]")
            return ""
        if name in self.headers:
            self.error(line.number, f"duplicate section [{name}] (first on line {self.headers[name]})")
        else:
            self.headers[name] = line.number
        return name

    def row(self, line: _Line) -> None:
        self.row_lines += 1
        if self.row_lines > MAX_ROWS:
            if self.row_lines == MAX_ROWS + 1:
                self.error(line.number, f"[LOAD TABLE] has more than {MAX_ROWS} rows")
            return
        fields = line.body.split()
        if "=" in line.body:
            self.error(line.number, f"load table rows are 'requests/sec min max', not settings: {line.body!r}")
            return
        if len(fields) != 3:
            self.error(
                line.number,
                f"load table row needs 3 fields (requests/sec min max), found {len(fields)}: {line.body!r}",
            )
            return
        problems = []
        threshold = minimum = maximum = None
        try:
            threshold = _threshold(fields[0])
        except _Invalid as exc:
            problems.append(f"load table threshold: {exc}")
        try:
            minimum = _count(fields[1])
        except _Invalid as exc:
            problems.append(f"load table min: {exc}")
        try:
            maximum = _count(fields[2])
        except _Invalid as exc:
            problems.append(f"load table max: {exc}")
        if minimum is not None and maximum is not None and minimum > maximum:
            problems.append(f"load table min {minimum} is greater than max {maximum}")
        if threshold is not None:
            if self.last is not None and threshold <= self.last[0]:
                problems.append(
                    f"load table threshold {fields[0]} is not greater than {_number_text(self.last[0])} "
                    f"on line {self.last[1]}; thresholds must be strictly ascending"
                )
            else:
                self.last = (threshold, line.number)
        for problem in problems:
            self.error(line.number, problem)
        if not problems and threshold is not None and minimum is not None and maximum is not None:
            self.rows.append(LoadRow(threshold, minimum, maximum, line.number))

    def entry(self, section: str, line: _Line) -> None:
        if line.kind != "entry":
            first = line.body.split()[0]
            if _key(section, first):
                self.error(line.number, f"{first}: missing '=' (expected '{first} = VALUE')")
            else:
                self.error(line.number, f"missing '=' in {line.body!r} (expected 'key = value')")
            return
        name = line.name
        if not name:
            self.error(line.number, f"missing key before '=' in {line.body!r}")
            return
        key = _key(section, name)
        if key is None:
            self.error(line.number, _unknown_key(section, name))
            return
        if name in self.seen[section]:
            self.error(line.number, f"duplicate key {name} (first set on line {self.seen[section][name]})")
            return
        self.seen[section][name] = line.number
        value = line.value
        if not value:
            if key.empty is not None:
                self.values[section][key.field] = key.empty
            return  # otherwise unset: the default applies
        try:
            self.values[section][key.field] = key.convert(value)
        except _Invalid as exc:
            self.error(line.number, f"{name}: {exc}")

    def finish(self) -> BalancerConf:
        if self.binary:
            pass  # "missing section" would only repeat the control-character error (old Mac CR line ends, say)
        elif LOAD_TABLE not in self.headers:
            self.errors.append(f"{self.path}: missing [LOAD TABLE] section")
        elif not self.row_lines:
            self.error(self.headers[LOAD_TABLE], "[LOAD TABLE] has no rows (expected 'requests/sec min max' lines)")
        if SLAVE not in self.headers and not self.binary:
            self.errors.append(f"{self.path}: missing [SLAVE] section")
        slave = self.values[SLAVE]
        zone, region = slave.get("availability_zone"), slave.get("region")
        if isinstance(zone, str) and isinstance(region, str) and not _zone_in_region(zone, region):
            self.error(self.seen[SLAVE]["availability_zone"], f"availability_zone: {zone!r} is not in region {region}")
        fallback = self.values[MASTER].get("on_demand_fallback")
        if isinstance(fallback, int) and fallback > 0 and slave.get("on_demand_price") is None:
            self.error(
                self.seen[MASTER]["on_demand_fallback"],
                "on_demand_fallback: needs [SLAVE] on_demand_price (what an on-demand slave may cost, USD/hour)",
            )
        if len(self.errors) > MAX_ERRORS:
            more = len(self.errors) - MAX_ERRORS
            self.errors[MAX_ERRORS:] = [f"{self.path}: ... and {more} more error{'s' if more > 1 else ''}"]
        if self.errors:
            raise ConfError(self.errors)
        return BalancerConf(
            path=self.path,
            table=tuple(self.rows),
            master=MasterConf(**t.cast("dict[str, t.Any]", self.values[MASTER])),
            slave=SlaveConf(**t.cast("dict[str, t.Any]", self.values[SLAVE])),
        )


def _zone_in_region(zone: str, region: str) -> bool:
    """us-west-2a and the Local Zone us-west-2-lax-1a are in us-west-2."""
    return zone[:-1] == region or zone.startswith(region + "-")


_count = _between(0, MAX_SLAVES, whole=True)


def _unknown_key(section: str, name: str) -> str:
    known = [key.name for key in _KEYS[section]]
    lowered = name.lower()
    if lowered in known:
        hint = f"; did you mean {lowered!r}? (keys are lower case)"
    else:
        hint = _did_you_mean(lowered, known)
    for other, keys in _KEYS.items():
        if other != section and any(key.name == lowered for key in keys):
            hint = f"; {lowered} belongs in [{other}]"
    return f"unknown key {name!r} in [{section}]{hint}"


def _number_text(value: float) -> str:
    return repr(float(value))


def load_conf(path: str) -> BalancerConf:
    """Read and validate the aws_balancer.conf at ``path``; ConfError for any problem."""
    return parse_conf(_read_text(path), path)


def _read_text(path: str) -> str:
    """The file's text; never blocks (a FIFO, a device) and never reads more than MAX_CONF_BYTES."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait (it is refused below).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise ConfError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ConfError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfError(f"{path}: is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfError(f"{path}: not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > MAX_CONF_BYTES:
            raise ConfError(f"{path}: too large ({info.st_size} bytes; an aws_balancer.conf has at most {MAX_CONF_BYTES})")
        chunks = []
        size = 0
        while True:  # a file growing while read is still capped
            chunk = os.read(fd, MAX_CONF_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_CONF_BYTES:
                raise ConfError(f"{path}: too large (more than {MAX_CONF_BYTES} bytes)")
    except OSError as exc:
        raise ConfError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return _decode(b"".join(chunks), path)


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None


# ---------------------------------------------------------------------------
# Showing


def summary(conf: BalancerConf, hostname: str, gbrowse: GBrowseLayout | None = None) -> str:
    """What ``--check-config`` prints: the load table and every setting in effect, defaults marked.

    With ``gbrowse`` (GBrowse's layout on this host) an unset ``renderfarm_conf``
    shows the file it stands for and where that came from.
    """
    out = [f"{conf.path}: OK", "", "[LOAD TABLE]  (requests/sec -> min..max slaves; below the first row: none)"]
    out.append(f"  {'req/s':>8}  {'min':>4}  {'max':>4}")
    for row in conf.table:
        out.append(f"  {_number_text(row.threshold):>8}  {row.min:>4}  {row.max:>4}")
    for section, values, defaults in ((MASTER, conf.master, MasterConf()), (SLAVE, conf.slave, SlaveConf())):
        out.append("")
        out.append(f"[{section}]")
        width = max(len(key.name) for key in _KEYS[section])
        for key in _KEYS[section]:
            value = getattr(values, key.field)
            shown = _show(value)
            notes = []
            if value == getattr(defaults, key.field):
                notes.append("default")
            if key.name == "server_status_url":
                shown = masked_url(shown)
            if key.name == "balancer_id" and value is None:
                shown = conf.resolved_balancer_id(hostname)
                notes = ["derived from the host name and the conf path"]
            if key.name == "state_file" and value is None:
                shown = conf.resolved_state_file(hostname)
                notes = ["default"]
            if key.name == "history_file" and value is None:
                shown = "(none: no history is kept)"
            if key.name == "renderfarm_conf" and value is None and gbrowse is not None:
                shown = conf.resolved_renderfarm_conf(gbrowse.conf_dir)
                notes = [f"GBrowse's configuration directory, from {gbrowse.conf_dir_from}"]
            if key.name == "metrics_listen" and value is None:
                shown = "(none: no Prometheus metrics)"
            if key.name == "reload_command" and not value:
                shown = "(none: GBrowse must re-read renderfarm.conf itself, as CGI GBrowse does)"
            if value is not None and key.name in _UNITS:
                shown = f"{shown} {_UNITS[key.name]}"
            note = f"  ({'; '.join(notes)})" if notes else ""
            out.append(f"  {key.name:<{width}} = {shown}{note}")
    return "\n".join(out)


_UNITS = {
    "poll_interval": "minutes",
    "scale_in_delay": "minutes",
    "scale_in_window": "minutes",
    "load_margin": "standard deviations of the load's noise",
    "status_timeout": "seconds",
    "spot_bid": "USD/hour",
    "ready_timeout": "minutes",
    "ready_misses": "slow readiness checks in a row",
    "drain_time": "seconds",
    "refresh_batch": "slaves at a time",
    "history_max_bytes": f"bytes (then rotated, {HISTORY_KEEP} kept)",
    "max_hourly_spend": "USD/hour",
    "on_demand_fallback": "polls of spot capacity errors in a row (0: never)",
    "on_demand_price": "USD/hour",
}


def _show(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) if value else "(none)"
    if isinstance(value, float):
        return _number_text(value)
    return str(value)


# ---------------------------------------------------------------------------
# Editing


@dataclass(frozen=True)
class Edit:
    """Set ``option`` in ``section`` to ``value`` (None: remove the line), optionally with a trailing comment."""

    section: str
    option: str
    value: str | None
    comment: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    """What update_conf did: the text before and after, and the backup it left (if any)."""

    changed: bool
    before: str
    after: str
    backup: str | None


def apply_edits(text: str, edits: t.Sequence[Edit] = (), table: t.Sequence[LoadRow] | None = None) -> str:
    """Apply ``edits`` (and a new load ``table``) to the text of a conf, keeping every other byte.

    A key that is present gets its value replaced in place (its ``key =``
    spacing and trailing comment kept, unless a new ``comment`` is given); an
    absent key is added after the last key line of its section, an absent
    section is appended. ``table`` replaces the data rows of ``[LOAD TABLE]``
    and keeps its comment lines. Line endings, a byte order mark and a missing
    final newline are kept. Raises ConfError for an edit that cannot be written.
    """
    bom = _BOM if text.startswith(_BOM) else ""
    editor = _Editor(text[len(bom):])
    for edit in edits:
        editor.apply(edit)
    if table is not None:
        editor.replace_table(table)
    return bom + editor.text()


class _Editor:
    def __init__(self, text: str) -> None:
        self.lines: list[tuple[str, str]] = split_lines(text)
        crlf = sum(1 for dummy, eol in self.lines if eol == "\r\n")
        lf = sum(1 for dummy, eol in self.lines if eol == "\n")
        self.eol = "\r\n" if crlf > lf else "\n"
        self.final_newline = not text or text.endswith("\n")

    def text(self) -> str:
        out = []
        for index, (content, eol) in enumerate(self.lines):
            last = index == len(self.lines) - 1
            if last:
                eol = (eol or self.eol) if self.final_newline else ""
            else:
                eol = eol or self.eol
            out.append(content + eol)
        return "".join(out)

    def scan(self) -> list[_Line]:
        return _scan("".join(content + (eol or "\n") for content, eol in self.lines))

    def section(self, lines: list[_Line], name: str) -> tuple[int, int] | None:
        """Index range of the first ``name`` section: (header index, end index)."""
        for index, line in enumerate(lines):
            if line.kind == "header" and not line.malformed and line.name == name:
                end = index + 1
                while end < len(lines) and not (lines[end].kind == "header" and not lines[end].malformed):
                    end += 1
                return index, end
        return None

    def append(self, new: list[str]) -> None:
        if self.lines and self.lines[-1][0].strip():
            new = [""] + new
        self.lines += [(content, self.eol) for content in new]

    def apply(self, edit: Edit) -> None:
        section = canonical_section(edit.section)
        if section not in (MASTER, SLAVE):
            raise ConfError(
                f"cannot edit section [{edit.section}]: only [MASTER] and [SLAVE] take key = value settings"
            )
        if _key(section, edit.option) is None:
            raise ConfError(_unknown_key(section, edit.option))
        value = None if edit.value is None else _check_value(edit.option, edit.value)
        comment = None if edit.comment is None else _check_comment(edit.option, edit.comment)
        lines = self.scan()
        span = self.section(lines, section)
        if span is None:
            if value is not None:
                self.append([f"[{section}]", _entry(edit.option, value, comment, [])])
            return
        start, end = span
        found = [i for i in range(start + 1, end) if lines[i].kind == "entry" and lines[i].name == edit.option]
        if value is None:
            for index in reversed(found):
                del self.lines[index]
            return
        if found:
            first = found[0]
            self.lines[first] = (_replace_value(lines[first], value, comment), self.lines[first][1])
            for index in reversed(found[1:]):
                del self.lines[index]
            return
        entries = [i for i in range(start + 1, end) if lines[i].kind == "entry"]
        at = entries[-1] + 1 if entries else start + 1
        self.lines.insert(at, (_entry(edit.option, value, comment, [lines[i] for i in entries]), self.eol))

    def replace_table(self, table: t.Sequence[LoadRow]) -> None:
        lines = self.scan()
        span = self.section(lines, LOAD_TABLE)
        rows = _format_rows(table)
        if span is None:
            self.append(["[LOAD TABLE]", "#req/s  min max"] + rows)
            return
        start, end = span
        old = [i for i in range(start + 1, end) if lines[i].kind == "row"]
        if _same_table([lines[i].body for i in old], table):
            return
        if old:
            at = old[0]
        else:
            at = start + 1
            while at < end and lines[at].kind == "comment":
                at += 1
        for index in reversed(old):
            del self.lines[index]
        self.lines[at:at] = [(row, self.eol) for row in rows]


def _check_value(option: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ConfError(f"{option}: a value must be one line, not {value!r}")
    value = value.strip()
    if re.search(r"(?:^|\s)#", value):
        raise ConfError(f"{option}: {value!r} would be read as a comment ('#' after a space)")
    return value


def _check_comment(option: str, comment: str) -> str:
    if "\n" in comment or "\r" in comment:
        raise ConfError(f"{option}: a comment must be one line, not {comment!r}")
    return comment.strip()


def _entry(option: str, value: str, comment: str | None, section: t.Sequence[_Line]) -> str:
    """A new ``key = value`` line for ``section`` (its entry lines).

    When the section's keys are padded with spaces so that their '=' line up
    (as in the shipped conf), the new line's '=' goes in the same column.
    """
    key = option
    columns = {line.eq for line in section}
    if len(columns) == 1 and all(line.text[: line.eq].endswith(" ") for line in section):
        column = columns.pop()
        padded = any(line.text[: line.eq].endswith("  ") for line in section)
        if padded and len(option) < column:
            key = option.ljust(column - 1)
    line = f"{key} = {value}" if value else f"{key} ="
    return f"{line} # {comment}" if comment else line


def _replace_value(line: _Line, value: str, comment: str | None) -> str:
    text = line.text
    if not value:
        head = text[: line.eq + 1]
    elif line.vend > line.vstart:
        head = text[: line.vstart] + value
    else:
        head = text[: line.eq + 1] + " " + value
    if comment is not None:
        return f"{head} # {comment}" if comment else head
    if line.hash_at < 0:
        return head
    gap = text[line.vend:line.hash_at]
    if gap.strip(" "):  # tabs: keep them as they were
        return head + gap + text[line.hash_at:]
    return head + " " * max(1, line.hash_at - len(head)) + text[line.hash_at:]


def _format_rows(table: t.Sequence[LoadRow]) -> list[str]:
    """Rows aligned like the shipped conf: ``0.1     0   1``."""
    cells = [(_number_text(row.threshold), str(row.min), str(row.max)) for row in table]
    first = max([7] + [len(c[0]) for c in cells]) + 1
    second = max([3] + [len(c[1]) for c in cells]) + 1
    return [f"{a:<{first}}{b:<{second}}{c}" for a, b, c in cells]


def _same_table(bodies: list[str], table: t.Sequence[LoadRow]) -> bool:
    if len(bodies) != len(table):
        return False
    for body, row in zip(bodies, table):
        fields = body.split()
        try:
            if len(fields) != 3 or (_number(fields[0]), _integer(fields[1]), _integer(fields[2])) != (
                float(row.threshold),
                row.min,
                row.max,
            ):
                return False
        except _Invalid:
            return False
    return True


def update_conf(
    path: str,
    edits: t.Sequence[Edit] = (),
    table: t.Sequence[LoadRow] | None = None,
    *,
    backup: bool = True,
    check: bool = False,
) -> UpdateResult:
    """Edit the conf at ``path`` in place: read, apply, validate, write atomically when changed.

    The result must be a valid conf (ConfError naming lines of the new text
    otherwise, and nothing is written). A missing file is treated as empty, so
    a complete set of edits creates it. With ``check`` nothing is written.
    The old bytes are kept in ``PATH.bak`` when ``backup`` (and a file existed).
    """
    try:
        before = _read_text(path)
        existed = True
    except ConfError:
        if os.path.lexists(path):
            raise
        before, existed = "", False
    after = apply_edits(before, edits, table)
    parse_conf(after, path)
    if after == before:
        return UpdateResult(False, before, after, None)
    if check:
        return UpdateResult(True, before, after, None)
    try:
        saved = write_atomic(path, after, backup=backup and existed)
    except OSError as exc:
        raise ConfError(f"{path}: {exc.strerror or exc}") from None
    return UpdateResult(True, before, after, saved)


__all__ = [
    "BalancerConf",
    "ConfError",
    "Edit",
    "MasterConf",
    "SlaveConf",
    "UpdateResult",
    "apply_edits",
    "conf_keys",
    "default_balancer_id",
    "load_conf",
    "parse_conf",
    "summary",
    "update_conf",
]
