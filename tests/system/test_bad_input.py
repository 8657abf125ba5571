# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input corpus: the real ``gbrowse_aws_balancer`` command and the real modules, fed operators' mistakes.

Every case asserts the same five things: a non-zero exit; exactly one message,
naming ``FILE:LINE`` or the option; no traceback; no request at all to the
AWS endpoint (a loopback server that counts every request; the server-status
URL points at it too); and nothing left behind (the case's directory is the
same before and after: no pid file, no temporary file, no edited conf).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import balancer_command
from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import LoopbackServer, QuietHandler, ec2_error_body

TIMEOUT = 60  # a case that blocks (a FIFO opened for reading, say) fails here instead of hanging the suite


class CountingEndpoint(LoopbackServer):
    """Counts every request; answers each with EC2's AuthFailure so that a client gives up at once."""

    thread_name = "counting endpoint"

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def make_handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                self.read_body()
                with endpoint.lock:
                    endpoint.requests.append(f"{self.command} {self.path}")
                self.reply(401, [("Content-Type", "text/xml")], ec2_error_body("AuthFailure", "counted"))

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

        return Handler

    def take(self) -> list[str]:
        with self.lock:
            seen, self.requests = self.requests, []
        return seen


@pytest.fixture(scope="module")
def endpoint():
    with CountingEndpoint() as server:
        yield server


# ---------------------------------------------------------------------------
# A good conf, and ways to spoil it


def good_conf(status_url: str, directory: Path, **replace: str) -> str:
    """A valid aws_balancer.conf; ``replace`` swaps in a whole line by key (``key="key = value"``)."""
    lines = {
        "rows": "0.1     0   1\n10      1   4",
        "external_ip": "external_ip       = 127.0.0.1",
        "poll_interval": "poll_interval     = 0.5",
        "server_status_url": f"server_status_url = {status_url}",
        "balancer_id": "balancer_id       = bad-input",
        "renderfarm_conf": f"renderfarm_conf   = {directory}/renderfarm.conf",
        "reload_command": "reload_command    = true",
        "status_timeout": "status_timeout    = 2",
        "scale_in_delay": "scale_in_delay    = 0",
        "max_launch_per_poll": "max_launch_per_poll = 4",
        "instance_type": "instance_type     = m5.large",
        "spot_bid": "spot_bid          = 0.10",
        "ports": "ports             = 8101",
        "region": "region            = us-west-2",
        "image_id": "image_id          = ami-12345678",
        "availability_zone": "availability_zone = us-west-2a",
        "security_group": "security_group    = gbrowse",
        "ready_timeout": "ready_timeout     = 5",
    }
    lines.update(replace)
    master = ("external_ip", "poll_interval", "server_status_url", "balancer_id", "renderfarm_conf",
              "reload_command", "status_timeout", "scale_in_delay", "max_launch_per_poll")
    slave = ("instance_type", "spot_bid", "ports", "region", "image_id", "availability_zone", "security_group",
             "ready_timeout")
    return (
        "[LOAD TABLE]\n#req/s  min max\n" + lines["rows"] + "\n\n[MASTER]\n"
        + "".join(lines[k] + "\n" for k in master if lines[k] is not None)
        + "\n[SLAVE]\n"
        + "".join(lines[k] + "\n" for k in slave if lines[k] is not None)
    )


def line_of(text: str, marker: str) -> int:
    """The number of the first line of ``text`` containing ``marker``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


@dataclasses.dataclass
class Ctx:
    """What a case builds in: its own directory, the endpoint, the base environment."""

    work: Path
    status_url: str
    env: dict[str, str]
    #: Processes a case started, stopped after it.
    procs: list[subprocess.Popen] = dataclasses.field(default_factory=list)
    #: Extra checks after the run.
    after: list[t.Callable[[], None]] = dataclasses.field(default_factory=list)
    #: Paths the run may create (a log file that carries the error) or remove (a stale pid file).
    may_create: set[str] = dataclasses.field(default_factory=set)
    may_remove: set[str] = dataclasses.field(default_factory=set)
    #: Run the command through this (setpriv, to take root's power to read any file).
    prefix: list[str] = dataclasses.field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.work / "aws_balancer.conf"

    def write_conf(self, text: str | bytes, name: str = "aws_balancer.conf") -> Path:
        path = self.work / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        return path

    def good(self, **replace: str) -> str:
        return good_conf(self.status_url, self.work, **replace)


@dataclasses.dataclass
class Case:
    name: str
    #: Builds the case in ``ctx``; returns (kind, arguments, expected fragment of the message).
    #: kind "cli": arguments of the command; kind "module": (module name, its parameters).
    build: t.Callable[[Ctx], tuple[str, t.Any, str]]
    env: dict[str, str] = dataclasses.field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, **env: str) -> t.Callable:
    def register(build: t.Callable[[Ctx], tuple[str, t.Any, str]]) -> t.Callable:
        CASES.append(Case(name, build, env))
        return build

    return register


def conf_case(name: str, spoil: t.Callable[[Ctx], str | bytes], message: t.Callable[[Ctx, str], str], check_config: bool = False) -> None:
    """A conf file case: ``spoil`` gives the file's content, ``message`` the expected fragment (given the text)."""

    def build(ctx: Ctx) -> tuple[str, t.Any, str]:
        content = spoil(ctx)
        ctx.write_conf(content)
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        args = ["--conf", str(ctx.conf)]
        args += ["--check-config"] if check_config else ["--pidfile", str(ctx.work / "balancer.pid")]
        return "cli", args, message(ctx, text)

    CASES.append(Case(name, build))


def at(marker: str, fragment: str) -> t.Callable[[Ctx, str], str]:
    """The message names CONF:LINE of the line holding ``marker``, then ``fragment``."""
    return lambda ctx, text: f"{ctx.conf}:{line_of(text, marker)}: {fragment}"


def whole(fragment: str) -> t.Callable[[Ctx, str], str]:
    return lambda ctx, text: f"{ctx.conf}: {fragment}"


# --- the conf file: numbers (NaN, inf, negative, huge, tiny) ---------------------------------------------

for key, value, fragment in [
    ("poll_interval", "nan", "poll_interval: 'nan' is not a number"),
    ("poll_interval", "inf", "poll_interval: 'inf' is not a number"),
    ("poll_interval", "1e308", "poll_interval: '1e308' must be from 0.01 to 1440 minutes"),
    ("poll_interval", "1e-300", "poll_interval: '1e-300' must be from 0.01 to 1440 minutes"),
    ("poll_interval", "-0.5", "poll_interval: '-0.5' must be from 0.01 to 1440 minutes"),
    ("poll_interval", "1e999", "poll_interval: '1e999' is too large"),
    ("poll_interval", "\uff15", "poll_interval: '\uff15' is not a number"),  # a full-width digit
    ("status_timeout", "1e308", "status_timeout: '1e308' must be from 0.1 to 300 seconds"),
    ("status_timeout", "0", "status_timeout: '0' must be from 0.1 to 300 seconds"),
    ("ready_timeout", "1e9", "ready_timeout: '1e9' must be from 0.01 to 1440 minutes"),
    ("scale_in_delay", "-1", "scale_in_delay: '-1' must be from 0 to 1440 minutes"),
    ("max_launch_per_poll", "1000000000000000000", "max_launch_per_poll: '1000000000000000000' must be from 1 to 1000"),
    ("max_launch_per_poll", "1.5", "max_launch_per_poll: '1.5' is not a whole number"),
    ("spot_bid", "1e-9", "spot_bid: '1e-9' must be from 0.001 to 1000 USD/hour"),
    ("spot_bid", "0", "spot_bid: '0' must be from 0.001 to 1000 USD/hour"),
    ("spot_bid", "NaN", "spot_bid: 'NaN' is not a number"),
    ("spot_bid", "-inf", "spot_bid: '-inf' is not a number"),
    ("spot_bid", "1e6", "spot_bid: '1e6' must be from 0.001 to 1000 USD/hour"),
    ("ports", "0", "ports: '0' is not a port number (1-65535)"),
    ("ports", "8101 8101", "ports: '8101' is listed twice"),
]:
    conf_case(
        f"conf-{key}-{value}",
        lambda ctx, key=key, value=value: ctx.good(**{key: f"{key} = {value}"}),
        at(key + " ", fragment),
    )

# --- the conf file: the load table ----------------------------------------------------------------------

for name, rows, marker, fragment in [
    ("max-1e18", "0.1 0 1000000000000000000", "0.1 0 1", "load table max: '1000000000000000000' must be from 0 to 1000"),
    ("min-1e8", "0.1 100000000 1", "0.1 1", "load table min: '100000000' must be from 0 to 1000"),
    ("threshold-inf", "inf 0 1", "inf", "load table threshold: 'inf' is not a number"),
    ("threshold-nan", "nan 0 1", "nan", "load table threshold: 'nan' is not a number"),
    ("threshold-negative", "-1 0 1", "-1 0", "load table threshold: '-1' must be from 0 to 1e+09 requests/sec"),
    ("min-over-max", "0.1 3 1", "0.1 3", "load table min 3 is greater than max 1"),
    ("not-ascending", "10 1 4\n5 1 2", "5 1 2", "load table threshold 5 is not greater than 10.0"),
    ("two-fields", "10 1", "10 1", "load table row needs 3 fields"),
    ("a-setting", "max = 4", "max = 4", "load table rows are 'requests/sec min max', not settings"),
    ("too-many-rows", "\n".join(f"{n} 0 1" for n in range(101)), "100 0 1", "[LOAD TABLE] has more than 100 rows"),
]:
    conf_case(f"table-{name}", lambda ctx, rows=rows: ctx.good(rows=rows), at(marker, fragment))

# --- the conf file: strings, unicode, control characters, line endings ---------------------------------------

for name, key, value, fragment in [
    ("image_id-nul", "image_id", "ami-1234\x005678", "control character U+0000"),
    ("image_id-escape", "image_id", "ami-\x1b[31m", "control character U+001B"),
    ("image_id-del", "image_id", "ami-12\x7f", "control character U+007F"),
    ("image_id-c1", "image_id", "ami-12\x85", "control character U+0085"),
    ("image_id-line-separator", "image_id", "ami-12\u2028x", "control character U+2028"),
    ("image_id-huge", "image_id", "ami-" + "a" * 900_000, "image_id: an image id or name has at most 128 characters"),
    ("security_group-long", "security_group", "g" * 256, "security_group: a security group name has at most 255"),
    ("reload_command-bell", "reload_command", "apache2ctl\x07 graceful", "control character U+0007"),
    ("region-unicode", "region", "us-w\u00e9st-2", "region: 'us-w\u00e9st-2' is not a region like us-west-2"),
    ("region-zone-mismatch", "availability_zone", "us-east-1a", "availability_zone: 'us-east-1a' is not in region"),
    ("balancer_id-unicode", "balancer_id", "m\u00e4ster", "balancer_id: 'm\u00e4ster' must be 1 to 64 of the characters"),
    ("external_ip", "external_ip", "999.1.1.1", "external_ip: '999.1.1.1' is not an IP address"),
    ("instance_type-case", "instance_type", "M5.LARGE", "instance_type: 'M5.LARGE' is not an instance type"),
    ("renderfarm-relative", "renderfarm_conf", "renderfarm.conf", "renderfarm_conf: 'renderfarm.conf' is not an absolute path"),
    ("server_status_url", "server_status_url", "notaurl", "server_status_url: 'notaurl' is not an http:// or https:// URL"),
    ("server_status_url-password", "server_status_url", "http://admin:hunter2@127.0.0.1:99999/server-status",
     "server_status_url: 'http://admin:***@127.0.0.1:99999/server-status' is not an http:// or https:// URL"),
]:
    conf_case(f"conf-{name}", lambda ctx, key=key, value=value: ctx.good(**{key: f"{key} = {value}"}), at(key, fragment))

conf_case("conf-duplicate-key", lambda ctx: ctx.good(spot_bid="spot_bid = 0.1\nspot_bid = 0.2"),
          at("spot_bid = 0.2", "duplicate key spot_bid (first set on line"))
conf_case("conf-duplicate-section", lambda ctx: ctx.good() + "[MASTER]\n",
          lambda c, text: f"{c.conf}:{len(text.splitlines())}: duplicate section [MASTER]")
conf_case("conf-unknown-section", lambda ctx: ctx.good() + "[SLAVES]\n", lambda c, text: f"{c.conf}:{len(text.splitlines())}: unknown section [SLAVES]")
conf_case("conf-unknown-key", lambda ctx: ctx.good(ports="ports = 8101\nport = 8102"), at("port = 8102", "unknown key 'port' in [SLAVE]"))
conf_case("conf-missing-equals", lambda ctx: ctx.good(ports="ports 8101"), at("ports 8101", "ports: missing '='"))
conf_case("conf-malformed-header", lambda ctx: ctx.good().replace("[MASTER]", "[MASTER"), at("[MASTER", "malformed section header"))
conf_case("conf-text-before-sections", lambda ctx: "hello\n" + ctx.good(), at("hello", "text before the first section"))
conf_case("conf-mac-line-endings", lambda ctx: ctx.good().replace("\n", "\r"), lambda c, text: f"{c.conf}:1: control character U+000D")
conf_case("conf-mixed-endings-lone-cr", lambda ctx: ctx.good().replace("\n", "\r\n").replace("ports             = 8101\r\n", "ports = 8101\rspot_bid = 1\n"),
          at("ports = 8101", "control character U+000D"))
conf_case("conf-binary", lambda ctx: b"[LOAD TABLE]\n0.1 0 1\n\xff\xfe\x00\x80garbage", whole("not UTF-8 text (byte 0xff on line 3)"))
conf_case("conf-latin1", lambda ctx: ctx.good(security_group="security_group = caf\u00e9").encode("latin-1"), whole("not UTF-8 text (byte 0xe9"))
conf_case("conf-too-large-comments", lambda ctx: ctx.good() + ("# padding\n" * 110_000), whole("too large"))
conf_case("conf-check-config-nan", lambda ctx: ctx.good(poll_interval="poll_interval = nan"),
          at("poll_interval", "poll_interval: 'nan' is not a number"), check_config=True)
conf_case("conf-check-config-password", lambda ctx: ctx.good(server_status_url="server_status_url = https://u:hunter2@host:0/x"),
          at("server_status_url", "server_status_url: 'https://u:***@host:0/x' is not an http"), check_config=True)


# --- the conf file: not a file ------------------------------------------------------------------------------


def _special_conf(ctx: Ctx, make: t.Callable[[Path], None], check_config: bool) -> list[str]:
    path = ctx.work / "special.conf"
    make(path)
    args = ["--conf", str(path)]
    return args + (["--check-config"] if check_config else ["--pidfile", str(ctx.work / "balancer.pid")])


for check in (True, False):
    mode = "check-config" if check else "daemon"

    @case(f"file-fifo-{mode}")
    def _fifo(ctx: Ctx, check: bool = check) -> tuple[str, t.Any, str]:
        args = _special_conf(ctx, os.mkfifo, check)
        return "cli", args, f"{ctx.work}/special.conf: not a regular file (a FIFO)"

    @case(f"file-dev-zero-{mode}")
    def _zero(ctx: Ctx, check: bool = check) -> tuple[str, t.Any, str]:
        args = _special_conf(ctx, lambda p: p.symlink_to("/dev/zero"), check)
        return "cli", args, f"{ctx.work}/special.conf: not a regular file (a character device)"

    @case(f"file-sparse-4gib-{mode}")
    def _huge(ctx: Ctx, check: bool = check) -> tuple[str, t.Any, str]:
        def make(path: Path) -> None:
            with open(path, "wb") as fh:
                fh.truncate(4 << 30)

        args = _special_conf(ctx, make, check)
        return "cli", args, f"{ctx.work}/special.conf: too large ({4 << 30} bytes"


@case("file-directory")
def _directory(ctx: Ctx):
    return "cli", _special_conf(ctx, lambda p: p.mkdir(), False), f"{ctx.work}/special.conf: is a directory"


@case("file-symlink-loop")
def _loop(ctx: Ctx):
    def make(path: Path) -> None:
        path.symlink_to(ctx.work / "other.conf")
        (ctx.work / "other.conf").symlink_to(path)

    return "cli", _special_conf(ctx, make, True), f"{ctx.work}/special.conf: cannot read: Too many levels of symbolic links"


@case("file-dangling-symlink")
def _dangling(ctx: Ctx):
    return "cli", _special_conf(ctx, lambda p: p.symlink_to(ctx.work / "gone"), False), f"{ctx.work}/special.conf: no such file"


@case("file-missing-unicode-name")
def _missing(ctx: Ctx):
    path = ctx.work / "bal\u00e4ncer \u2603.conf"
    return "cli", ["--conf", str(path), "--check-config"], f"{path}: no such file"


@case("file-unreadable")
def _unreadable(ctx: Ctx):
    # Root reads a mode-000 file anyway: run the command without the capabilities that let it.
    ctx.write_conf(ctx.good())
    ctx.conf.chmod(0)
    ctx.prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    return "cli", ["--conf", str(ctx.conf), "--check-config"], f"{ctx.conf}: permission denied"


# --- the command line ----------------------------------------------------------------------------------------


def _good_args(ctx: Ctx, *more: str) -> list[str]:
    ctx.write_conf(ctx.good())
    return ["--conf", str(ctx.conf), *more]


for option in ("--pidfile", "--logfile", "--report"):

    @case(f"option{option}-missing-directory")
    def _missing_dir(ctx: Ctx, option: str = option):
        path = ctx.work / "no-such-dir" / "x"
        return "cli", _good_args(ctx, option, str(path)), f"{option} {path}: no such directory {ctx.work}/no-such-dir"

    @case(f"option{option}-a-directory")
    def _a_dir(ctx: Ctx, option: str = option):
        (ctx.work / "adir").mkdir()
        return "cli", _good_args(ctx, option, str(ctx.work / "adir")), f"{option} {ctx.work}/adir: is a directory"


for option in ("--pidfile", "--report"):

    @case(f"option{option}-a-fifo")
    def _a_fifo(ctx: Ctx, option: str = option):
        os.mkfifo(ctx.work / "a.fifo")
        return "cli", _good_args(ctx, option, str(ctx.work / "a.fifo")), f"{option} {ctx.work}/a.fifo: not a regular file"


@case("option--pidfile-a-symlink")
def _pid_symlink(ctx: Ctx):
    (ctx.work / "real.pid").write_text("")
    (ctx.work / "link.pid").symlink_to(ctx.work / "real.pid")
    return "cli", _good_args(ctx, "--pidfile", str(ctx.work / "link.pid")), f"--pidfile {ctx.work}/link.pid: a symbolic link"


@case("kill-pidfile-symlink-loop")
def _kill_loop(ctx: Ctx):
    (ctx.work / "a.pid").symlink_to(ctx.work / "b.pid")
    (ctx.work / "b.pid").symlink_to(ctx.work / "a.pid")
    return "cli", ["--kill", "--pidfile", str(ctx.work / "a.pid")], f"--pidfile {ctx.work}/a.pid: a symbolic link"


@case("option--verbosity-9")
def _verbosity(ctx: Ctx):
    return "cli", _good_args(ctx, "--verbosity", "9"), "argument --verbosity: invalid choice: 9"


@case("option--verbosity-nan")
def _verbosity_nan(ctx: Ctx):
    return "cli", _good_args(ctx, "--verbosity", "nan"), "argument --verbosity: invalid int value: 'nan'"


@case("option-unknown")
def _unknown(ctx: Ctx):
    return "cli", _good_args(ctx, "--frobnicate"), "unrecognized arguments: --frobnicate"


@case("option--user-no-such-user")
def _user(ctx: Ctx):
    return "cli", _good_args(ctx, "--user", "no-such-user", "--pidfile", str(ctx.work / "b.pid")), "--user: no such user 'no-such-user'"


@case("option--background--user-no-such-user")
def _background_user(ctx: Ctx):
    # The failure comes after the fork: the parent reports the child's error, the log has it, no pid file stays.
    log = ctx.work / "balancer.log"
    ctx.may_create.add("balancer.log")
    ctx.after.append(lambda: _assert_in(log.read_text(), "Cannot start: --user: no such user 'no-such-user'"))
    args = _good_args(ctx, "--background", "--user", "no-such-user", "--pidfile", str(ctx.work / "b.pid"), "--logfile", str(log))
    return "cli", args, "--user: no such user 'no-such-user'"


def _assert_in(text: str, fragment: str) -> None:
    assert fragment in text, text


def _holder(ctx: Ctx, pidfile: Path) -> subprocess.Popen:
    """A process holding ``pidfile``'s lock with its pid in it, as a running balancer does."""
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, b'%d\\n' % os.getpid())\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(pidfile)], stdout=subprocess.PIPE, text=True)
    ctx.procs.append(proc)
    assert proc.stdout.readline() == "locked\n"
    return proc


@case("option--background-already-running")
def _already(ctx: Ctx):
    pidfile = ctx.work / "b.pid"
    holder = _holder(ctx, pidfile)
    ctx.after.append(lambda: _assert_in(pidfile.read_text(), str(holder.pid)))
    return "cli", _good_args(ctx, "--background", "--pidfile", str(pidfile)), f"already running (pid {holder.pid}, {pidfile})"


def _bystander(ctx: Ctx) -> subprocess.Popen:
    proc = subprocess.Popen(["sleep", "120"])
    ctx.procs.append(proc)
    ctx.after.append(lambda: _assert_alive(proc))
    return proc


def _assert_alive(proc: subprocess.Popen) -> None:
    time.sleep(0.2)
    assert proc.poll() is None, "--kill signalled a process that does not hold the lock"


for content_name, content in (("live-pid", None), ("garbage", "not a pid\n"), ("empty", ""), ("huge-number", "9" * 40 + "\n")):

    @case(f"kill-stale-pidfile-{content_name}")
    def _stale(ctx: Ctx, content: str | None = content):
        pidfile = ctx.work / "b.pid"
        bystander = _bystander(ctx)
        pidfile.write_text(f"{bystander.pid}\n" if content is None else content)
        ctx.may_remove.add("b.pid")
        ctx.after.append(lambda: _assert_in(str(not pidfile.exists()), "True"))
        return "cli", ["--pidfile", str(pidfile), "--kill"], f"stale pid file {pidfile}"


@case("kill-without-pidfile")
def _kill_no_pidfile(ctx: Ctx):
    return "cli", ["--kill"], "--kill needs --pidfile"


@case("kill-pidfile-missing")
def _kill_missing(ctx: Ctx):
    return "cli", ["--kill", "--pidfile", str(ctx.work / "none.pid")], f"no pid file {ctx.work}/none.pid"


@case("kill-pidfile-directory")
def _kill_dir(ctx: Ctx):
    (ctx.work / "d.pid").mkdir()
    return "cli", ["--kill", "--pidfile", str(ctx.work / "d.pid")], f"--pidfile {ctx.work}/d.pid: not a regular file"


@case("kill-pidfile-fifo")
def _kill_fifo(ctx: Ctx):
    os.mkfifo(ctx.work / "f.pid")
    return "cli", ["--kill", "--pidfile", str(ctx.work / "f.pid")], f"--pidfile {ctx.work}/f.pid: not a regular file"


# --- the environment ---------------------------------------------------------------------------------------


def _env_case(name: str, fragment: str, files: t.Mapping[str, bytes] | None = None, **env: str) -> None:
    def build(ctx: Ctx):
        for file_name, data in (files or {}).items():
            (ctx.work / file_name).write_bytes(data)
        for key, value in env.items():
            ctx.env[key] = value.replace("{work}", str(ctx.work))
        return "cli", _good_args(ctx, "--pidfile", str(ctx.work / "b.pid")), fragment

    CASES.append(Case(name, build))


_env_case("env-endpoint-notaurl", "AWS_ENDPOINT_URL: 'notaurl' is not an http:// or https:// URL with a host", AWS_ENDPOINT_URL="notaurl")
_env_case("env-endpoint-ftp", "AWS_ENDPOINT_URL: 'ftp://127.0.0.1/' is not an http", AWS_ENDPOINT_URL="ftp://127.0.0.1/")
_env_case("env-endpoint-no-host", "AWS_ENDPOINT_URL_EC2: 'http://' is not an http", AWS_ENDPOINT_URL_EC2="http://")
_env_case("env-endpoint-bad-port", "AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:99999' is not an http", AWS_ENDPOINT_URL_EC2="http://127.0.0.1:99999")
_env_case("env-profile-missing", "AWS configuration: The config profile (nope) could not be found",
          files={"config": b"[default]\nregion = eu-west-1\n"}, AWS_CONFIG_FILE="{work}/config", AWS_PROFILE="nope")
_env_case("env-profile-empty", "AWS configuration: The config profile () could not be found", AWS_PROFILE="")
_env_case("env-config-unparsable", "AWS configuration: Unable to parse config file:",
          files={"config": b"[default\nregion = eu-west-1\n"}, AWS_CONFIG_FILE="{work}/config")
_env_case("env-config-binary", "AWS configuration: Unable to parse config file:",
          files={"config": bytes(range(256)) * 4}, AWS_CONFIG_FILE="{work}/config")
_env_case("env-credentials-unparsable", "AWS configuration: Unable to parse config file:",
          files={"credentials": b"aws_access_key_id = x\n"}, AWS_SHARED_CREDENTIALS_FILE="{work}/credentials")


# --- module parameters --------------------------------------------------------------------------------------


def _module_case(name: str, module: str, params: t.Callable[[Ctx], dict], fragment: t.Callable[[Ctx], str] | str) -> None:
    def build(ctx: Ctx):
        return "module", (module, params(ctx)), fragment(ctx) if callable(fragment) else fragment

    CASES.append(Case(f"module-{module}-{name}", build))


TABLE = [{"threshold": 0.1, "min": 0, "max": 1}, {"threshold": 10, "min": 1, "max": 4}]
for value in ("nan", "inf", "-inf", -1):
    _module_case(f"load-{value}", "load_decision", lambda ctx, value=value: {"load": value, "table": TABLE}, "load: must be a number of requests per second")
_module_case("counts-1e8", "load_decision", lambda ctx: {"load": 5, "table": TABLE, "counts": {"ready": 10**8}},
             "counts.ready: must be from 0 to 1000 slaves, not 100000000")
_module_case("max_launch-1e8", "load_decision", lambda ctx: {"load": 5, "table": TABLE, "max_launch": 10**8}, "max_launch: must be from 0 to 1000")
_module_case("table-max-1e8", "load_decision",
             lambda ctx: {"load": 5, "table": [{"threshold": 0, "min": 0, "max": 10**8}]},
             "table row 1: load table max: '100000000' must be from 0 to 1000")
_module_case("table-threshold-nan", "load_decision",
             lambda ctx: {"load": 5, "table": [{"threshold": "nan", "min": 0, "max": 1}]}, "table row 1: load table threshold: 'nan' is not a number")
_module_case("fleet-launched-nan", "load_decision",
             lambda ctx: {"load": 5, "table": TABLE, "fleet": [{"id": "i-1", "launched": "nan"}]}, "fleet[0].launched: 'nan' is not a number")


def _fifo_path(ctx: Ctx) -> str:
    os.mkfifo(ctx.work / "conf.fifo")
    return str(ctx.work / "conf.fifo")


_module_case("conf-fifo", "load_decision", lambda ctx: {"load": 5, "conf": _fifo_path(ctx)},
             lambda ctx: f"{ctx.work}/conf.fifo: not a regular file (a FIFO)")
_module_case("path-fifo", "balancer_conf_info", lambda ctx: {"path": _fifo_path(ctx)}, lambda ctx: f"{ctx.work}/conf.fifo: not a regular file (a FIFO)")
_module_case("path-dev-zero", "balancer_conf_info", lambda ctx: {"path": "/dev/zero"}, "/dev/zero: not a regular file (a character device)")
_module_case("path-directory", "balancer_conf_info", lambda ctx: {"path": str(ctx.work)}, lambda ctx: f"{ctx.work}: is a directory")
_module_case("path-fifo", "balancer_conf", lambda ctx: {"path": _fifo_path(ctx), "section": "SLAVE", "option": "spot_bid", "value": "0.1"},
             lambda ctx: f"{ctx.work}/conf.fifo: not a regular file (a FIFO)")


def _edit(key: str, value: t.Any) -> t.Callable[[Ctx], dict]:
    def params(ctx: Ctx) -> dict:
        ctx.write_conf(ctx.good())
        section = "MASTER" if key in ("poll_interval", "server_status_url", "max_launch_per_poll", "status_timeout") else "SLAVE"
        return {"path": str(ctx.conf), "section": section, "option": key, "value": value}

    return params


for key, value, fragment in [
    ("spot_bid", "1e-9", "spot_bid: '1e-9' must be from 0.001 to 1000 USD/hour"),
    ("poll_interval", "1e308", "poll_interval: '1e308' must be from 0.01 to 1440 minutes"),
    ("status_timeout", "nan", "status_timeout: 'nan' is not a number"),
    ("max_launch_per_poll", 10**8, "max_launch_per_poll: '100000000' must be from 1 to 1000"),
    ("image_id", "ami-\x01", "control character U+0001"),
    ("server_status_url", "http://u:hunter2@h:99999/", "server_status_url: 'http://u:***@h:99999/' is not an http"),
]:
    _module_case(f"{key}-{value}", "balancer_conf", _edit(key, value),
                 lambda ctx, key=key, fragment=fragment: f"{ctx.conf}:{line_of(ctx.good(), key + ' ')}: {fragment}")


def _table_edit(rows: list) -> t.Callable[[Ctx], dict]:
    def params(ctx: Ctx) -> dict:
        ctx.write_conf(ctx.good())
        return {"path": str(ctx.conf), "load_table": rows}

    return params


_module_case("load_table-max-1e18", "balancer_conf", _table_edit([{"threshold": 0, "min": 0, "max": 10**18}]),
             lambda ctx: f"{ctx.conf}:3: load table max: '1000000000000000000' must be from 0 to 1000")
_module_case("load_table-threshold-inf", "balancer_conf", _table_edit([{"threshold": "inf", "min": 0, "max": 1}]),
             lambda ctx: f"{ctx.conf}:3: load table threshold: 'inf' is not a number")


# ---------------------------------------------------------------------------
# Running a case


def snapshot(directory: Path) -> dict[str, str]:
    """Every entry under ``directory``: its kind, and a digest of a small regular file's bytes."""
    seen = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(directory))
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_size <= 4 << 20:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = f"mode {stat.S_IFMT(info.st_mode):o} size {info.st_size}"
    return seen


def base_env(home: Path, endpoint_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "AKIABADINPUTTEST",
        "AWS_SECRET_ACCESS_KEY": "bad-input-secret",
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }


def run(ctx: Ctx, kind: str, what: t.Any, args_dir: Path) -> tuple[int, str, str]:
    if kind == "cli":
        command = [*ctx.prefix, *balancer_command(), *what]
    else:
        module, params = what
        args_file = args_dir / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        os.chmod(args_dir, 0o755)
        args_file.chmod(0o644)
        command = [sys.executable, "-m", f"ansible_collections.gmod.gbrowse_aws.plugins.modules.{module}", str(args_file)]
    out = subprocess.run(
        command, env=ctx.env, cwd=ctx.work, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=TIMEOUT, check=False, errors="replace",
    )
    return out.returncode, out.stdout, out.stderr


def message_lines(kind: str, stdout: str, stderr: str) -> list[str]:
    """The messages a case printed: stderr lines (argparse's usage lines aside), or the module's ``msg``."""
    if kind == "module":
        result = json.loads(stdout)
        assert result.get("failed") is True, result
        return str(result["msg"]).splitlines()
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage: "):
        lines = [line for line in lines if not line.startswith(("usage: ", " "))]
    assert stdout == "", stdout
    return lines


@pytest.fixture
def case_dir():
    # Outside pytest's 0700 tree, so that the case run as nobody can reach its files.
    top = Path(tempfile.mkdtemp(prefix="gbrowse-bad-input-"))
    top.chmod(0o755)
    (top / "work").mkdir(mode=0o755)
    (top / "home").mkdir(mode=0o755)
    (top / "args").mkdir(mode=0o755)
    yield top
    shutil.rmtree(top)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input(bad: Case, endpoint: CountingEndpoint, case_dir: Path):
    ctx = Ctx(case_dir / "work", endpoint.url + "/server-status", base_env(case_dir / "home", endpoint.url))
    ctx.env.update(bad.env)
    try:
        kind, what, fragment = bad.build(ctx)
        before = snapshot(ctx.work)
        endpoint.take()
        code, stdout, stderr = run(ctx, kind, what, case_dir / "args")
        requests = endpoint.take()
        for check in ctx.after:
            check()
    finally:
        for proc in ctx.procs:
            proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
    assert code != 0, (stdout, stderr)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    lines = message_lines(kind, stdout, stderr)
    assert len(lines) == 1, lines
    assert fragment in lines[0], (fragment, lines[0])
    assert "hunter2" not in stdout + stderr
    assert requests == [], requests
    after = snapshot(ctx.work)
    expected = {k: v for k, v in before.items() if k not in ctx.may_remove}
    created = {k: v for k, v in after.items() if k in ctx.may_create and k not in before}
    assert {k: v for k, v in after.items() if k not in created} == expected


# ---------------------------------------------------------------------------
# The controls: the harness can see a success, a request, a password


def test_control_good_conf_passes_and_masks_the_password(endpoint: CountingEndpoint, case_dir: Path):
    url = endpoint.url.replace("http://", "http://admin:hunter2@") + "/server-status"
    ctx = Ctx(case_dir / "work", url, base_env(case_dir / "home", endpoint.url))
    ctx.write_conf(ctx.good())
    code, stdout, stderr = run(ctx, "cli", ["--conf", str(ctx.conf), "--check-config"], case_dir / "args")
    assert code == 0, stderr
    assert "admin:***@" in stdout and "hunter2" not in stdout


def test_control_the_endpoint_counts_a_real_start(endpoint: CountingEndpoint, case_dir: Path):
    """With a good conf the command does reach AWS (here: the counting endpoint), and logs the URL masked."""
    url = endpoint.url.replace("http://", "http://admin:hunter2@") + "/server-status"
    ctx = Ctx(case_dir / "work", url, base_env(case_dir / "home", endpoint.url))
    ctx.write_conf(ctx.good(poll_interval="poll_interval = 0.01"))
    endpoint.take()
    code, stdout, stderr = run(ctx, "cli", ["--conf", str(ctx.conf), "--once", "--dry-run"], case_dir / "args")
    requests = endpoint.take()
    assert requests, (code, stderr)
    assert "admin:***@" in stderr and "hunter2" not in stdout + stderr


def test_control_kill_stops_the_lock_holder(case_dir: Path):
    """The same --kill that refuses a stale pid file signals a process that holds the lock."""
    ctx = Ctx(case_dir / "work", "", base_env(case_dir / "home", "http://127.0.0.1:9"))
    pidfile = ctx.work / "b.pid"
    holder = _holder(ctx, pidfile)
    try:
        code, stdout, stderr = run(ctx, "cli", ["--pidfile", str(pidfile), "--kill"], case_dir / "args")
        assert code == 0, stderr
        assert holder.wait(timeout=30) == -signal.SIGTERM
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
