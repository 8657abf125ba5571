# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``gbrowse_aws_balancer``: the original's options, plus --check-config, --once, --dry-run;
``gbrowse_aws_balancer simulate`` and ``gbrowse_aws_balancer status``."""

from __future__ import annotations

# This file is the daemon's command-line front, not a module: it prints,
# exits and runs processes like any command does.
# pylint: disable=ansible-bad-function

import argparse
import errno
import fcntl
import getpass
import json
import os
import signal
import socket
import stat
import sys
import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import (
    BalancerConf,
    ConfError,
    load_conf,
    start_only_changes,
    summary,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import (
    KNOWN_CONF_DIRS,
    GBrowseLayout,
    find_layout,
    renderfarm_problems,
    writable_directory,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._getopt import getopt_argv
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._history import JsonLines
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import masked_url

DEFAULT_CONF_HELP = (
    "aws_balancer.conf in GBrowse's configuration directory: $GBROWSE_CONF, else GBrowse::ConfigData's conf, "
    f"else the first of {', '.join(KNOWN_CONF_DIRS)} that exists"
)

EX_OK = 0
EX_FAIL = 1
EX_USAGE = 2
EX_CONFIG = 78  # sysexits.h EX_CONFIG: systemd shows it as a configuration error

# Single-letter forms that were unique prefixes of the original's options.
SHORT = {
    "-a": "--access_key",
    "-c": "--conf",
    "-p": "--pidfile",
    "-l": "--logfile",
    "-u": "--user",
    "-v": "--verbosity",
    "-b": "--background",
    "-k": "--kill",
}


def normalize_argv(argv: t.Sequence[str]) -> list[str]:
    """Accept Getopt::Long spellings: ``-conf FILE``, ``-c FILE``, ``--conf=FILE``, ``--dry_run``."""
    return getopt_argv(argv, build_parser(), SHORT)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gbrowse_aws_balancer",
        description="Keep a farm of GBrowse render slaves on EC2 Spot sized to the master's Apache load.",
        epilog="Credentials: the instance's IAM role, the AWS_* variables or shared config, "
        "EC2_ACCESS_KEY/EC2_SECRET_KEY, or a prompt on a terminal. Options may be abbreviated.",
        allow_abbrev=True,
    )
    p.add_argument("--conf", metavar="FILE", help=f"balancer configuration (default: {DEFAULT_CONF_HELP})")
    p.add_argument("--access_key", metavar="KEY", help="EC2 access key (visible to other users in ps: avoid)")
    p.add_argument("--secret_key", metavar="KEY", help="EC2 secret key (visible to other users in ps: avoid)")
    p.add_argument("--pidfile", metavar="FILE", help="file holding the daemon's process ID (locked while it runs)")
    p.add_argument("--logfile", metavar="FILE", help="append log lines here instead of stderr")
    p.add_argument("--user", metavar="USER", help="run as this user after opening the pid and log files (root only)")
    p.add_argument(
        "--verbosity", type=int, choices=range(0, 4), default=2, metavar="0-3", help="0 least, 3 most (default 2)"
    )
    p.add_argument("--background", action="store_true", help="detach and run as a daemon")
    p.add_argument("--kill", action="store_true", help="stop the daemon named by --pidfile, and wait for its clean-up")
    p.add_argument(
        "--ssh_key", metavar="KEYPAIR", help="EC2 key pair for ssh to the slaves (port 22 from the master only)"
    )
    p.add_argument("--check-config", action="store_true", help="validate --conf, print a summary, and exit")
    p.add_argument(
        "--once", action="store_true", help="take a baseline, wait one poll interval, poll once, print JSON, exit"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="read Apache and AWS, print what would be done, change nothing"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="append each poll's report to FILE as one JSON line (the same JSON as --once prints)",
    )
    return p


def _print_errors(exc: ConfError) -> None:
    for line in exc.errors:
        print(line, file=sys.stderr)


def check_config(path: str, gbrowse: GBrowseLayout, conf_from: str | None = None) -> int:
    """Validate, print the settings in effect and where the paths came from, warn about what GBrowse won't see."""
    try:
        conf = load_conf(path)
    except ConfError as exc:
        _print_errors(exc)
        return EX_CONFIG
    print(summary(conf, socket.gethostname(), gbrowse))
    print("")
    print("[GBrowse on this host]")
    print(f"  --conf            = {path}  ({conf_from or 'given'})")
    print(f"  configuration     = {gbrowse.conf_dir}  (from {gbrowse.conf_dir_from})")
    print(f"  databases         = {gbrowse.databases}  (from {gbrowse.databases_from})")
    for problem in renderfarm_problems(conf.resolved_renderfarm_conf(gbrowse.conf_dir), gbrowse):
        print(f"warning: {problem}", file=sys.stderr)
    return EX_OK


def conf_path(args: argparse.Namespace, gbrowse: GBrowseLayout) -> tuple[str, str | None]:
    """``--conf``, or the default and where it came from."""
    if args.conf:
        return args.conf, None
    return gbrowse.balancer_conf, f"default: GBrowse's configuration directory, from {gbrowse.conf_dir_from}"


def publish_problem(conf: BalancerConf, gbrowse: GBrowseLayout) -> str | None:
    """Why the balancer could not write renderfarm.conf at all (then it must not start), or None."""
    path = conf.resolved_renderfarm_conf(gbrowse.conf_dir)
    problem = writable_directory(path)
    if problem is None:
        return None
    where = "" if conf.master.renderfarm_conf else f" (GBrowse's configuration directory, from {gbrowse.conf_dir_from})"
    return f"renderfarm_conf {path}{where}: {problem}; the balancer cannot publish its render farm and does not start"


# --------------------------------------------------------------------------
# pid file, daemon, privileges


class StartupError(Exception):
    """The balancer cannot start; the message is one line for the operator."""


class PidFile:
    """A pid file locked with flock while the daemon lives: a stale file is never mistaken for a live one.

    The lock is the truth: only the process holding it writes its pid into the
    file, and ``--kill`` signals nobody unless the lock is held.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise StartupError(f"--pidfile {self.path}: {_open_error(exc)}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StartupError(f"--pidfile {self.path}: not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise StartupError(f"already running (pid {read_pid(self.path)}, {self.path})") from None
            raise StartupError(f"--pidfile {self.path}: {exc.strerror}") from None
        except StartupError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)  # whatever a dead daemon left is not a pid any more
        self.fd = fd

    def write(self) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


def read_pid(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            text = fh.read(32).strip()
        return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None
    except (OSError, ValueError):
        return None


def kill_daemon(pidfile: str | None, wait: float = 900.0) -> int:
    """--kill: SIGTERM the daemon holding the pid file's lock, then wait for its clean-up (the lock's release).

    A pid file nobody holds locked is stale: its pid may belong to any process
    by now, so it is never signalled; the stale file is removed.
    """
    if not pidfile:
        print("gbrowse_aws_balancer: --kill needs --pidfile", file=sys.stderr)
        return EX_USAGE
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        print(f"gbrowse_aws_balancer: no pid file {pidfile}; is the daemon running?", file=sys.stderr)
        return EX_FAIL
    except OSError as exc:
        print(f"gbrowse_aws_balancer: --pidfile {pidfile}: {_open_error(exc)}", file=sys.stderr)
        return EX_USAGE
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            print(f"gbrowse_aws_balancer: --pidfile {pidfile}: not a regular file", file=sys.stderr)
            return EX_USAGE
        if _try_lock(fd):
            pid = read_pid(pidfile)
            try:
                os.unlink(pidfile)
                removed = "removed it"
            except OSError as exc:
                removed = f"cannot remove it: {exc.strerror}"
            print(
                f"gbrowse_aws_balancer: stale pid file {pidfile} (pid {pid or 'none'}): no balancer holds its lock, "
                f"so nothing was signalled; {removed}",
                file=sys.stderr,
            )
            return EX_FAIL
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:  # a daemon starting up writes its pid after the lock
            pid = read_pid(pidfile)
            if pid is None:
                time.sleep(0.1)
        if pid is None:
            print(f"gbrowse_aws_balancer: {pidfile} is locked but holds no pid; not signalling", file=sys.stderr)
            return EX_FAIL
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # exited meanwhile: the lock is released below
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _try_lock(fd):
                return EX_OK
            time.sleep(0.2)
        print(f"gbrowse_aws_balancer: process {pid} still running after {wait:.0f} s", file=sys.stderr)
        return EX_FAIL
    finally:
        os.close(fd)


def _open_error(exc: OSError) -> str:
    # O_NOFOLLOW: root never writes through a link someone put where the pid file goes.
    return "a symbolic link (give the real path)" if exc.errno == errno.ELOOP else str(exc.strerror)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class StartupPipe:
    """A --background start: the detached child tells the waiting parent "ready" or why it failed."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def parent_wait(self) -> int:
        """In the parent: the exit status of the start, the child's error on stderr."""
        os.close(self.write_fd)
        chunks = []
        while True:
            chunk = os.read(self.read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        message = b"".join(chunks).decode("utf-8", "replace").strip()
        if message == "ready":
            return EX_OK
        print(f"gbrowse_aws_balancer: {message or 'the daemon exited during start-up'}", file=sys.stderr)
        return EX_FAIL

    def child(self) -> None:
        os.close(self.read_fd)
        os.set_inheritable(self.write_fd, False)

    def _send(self, text: str) -> None:
        if self.write_fd >= 0:
            try:
                os.write(self.write_fd, text.encode("utf-8", "replace"))
            except OSError:
                pass
            os.close(self.write_fd)
            self.write_fd = -1

    def ready(self) -> None:
        self._send("ready")

    def failed(self, message: str) -> None:
        self._send(message)


def daemonize(startup: StartupPipe) -> None:
    """Classic double fork; stdio to /dev/null (the log goes to --logfile).

    The first parent waits on ``startup`` and exits with the start's outcome.
    """
    pid = os.fork()
    if pid > 0:
        code = startup.parent_wait()
        os.waitpid(pid, 0)
        os._exit(code)
    startup.child()
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def drop_privileges(user: str) -> None:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StartupError(f"--user: no such user {user!r}") from None
    if os.getuid() == entry.pw_uid:
        return
    if os.getuid() != 0:
        raise StartupError("--user needs the balancer to be started as root")
    os.initgroups(entry.pw_name, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


# --------------------------------------------------------------------------
# credentials and AWS


def credentials(args: argparse.Namespace, environ: t.Mapping[str, str]) -> dict[str, str]:
    """The original's sources on top of boto3's chain; never logged."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import LOG

    if args.access_key or args.secret_key:
        LOG.warning(
            "--access_key/--secret_key are visible to every user of this machine (ps); "
            "prefer the instance's IAM role or EC2_ACCESS_KEY/EC2_SECRET_KEY in a root-only file"
        )
    # EC2_* are the original's variables; ACCESS_KEY/SECRET_KEY are the names its
    # /etc/default/gbrowse-aws-balancer used, which systemd's EnvironmentFile passes as they are.
    access = args.access_key or environ.get("EC2_ACCESS_KEY") or environ.get("ACCESS_KEY")
    secret = args.secret_key or environ.get("EC2_SECRET_KEY") or environ.get("SECRET_KEY")
    if access and secret:
        return {"access_key": access, "secret_key": secret}
    if access or secret or not _chain_has_credentials():
        if sys.stdin.isatty():
            access = access or input("Enter your EC2 access key: ").strip()
            secret = secret or getpass.getpass("Enter your EC2 secret key: ").strip()
            return {"access_key": access, "secret_key": secret}
    return {}


def _chain_has_credentials() -> bool:
    try:
        import boto3
    except ImportError:
        return False
    return boto3.Session().get_credentials() is not None


# --------------------------------------------------------------------------
# main


def check_path_option(option: str, path: str) -> None:
    """--pidfile/--logfile/--report: a file (or a new one) in an existing directory; StartupError otherwise."""
    if not path or "\0" in path:
        raise StartupError(f"{option}: {path!r} is not a file name")
    directory = os.path.dirname(path) or "."
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise StartupError(f"{option} {path}: no such directory {directory}") from None
        return
    except OSError as exc:
        raise StartupError(f"{option} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise StartupError(f"{option} {path}: is a directory, not a file")
    if option in ("--pidfile", "--report") and not stat.S_ISREG(info.st_mode):
        raise StartupError(f"{option} {path}: not a regular file")


def balancer_main(argv: t.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import main as simulate

        return simulate(argv[1:], lambda: find_layout().balancer_conf)
    if argv[:1] == ["status"]:
        from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._state import main as status

        return status(argv[1:], lambda: find_layout().balancer_conf)
    args = build_parser().parse_args(normalize_argv(argv))
    if args.kill:
        return kill_daemon(args.pidfile)
    gbrowse = find_layout()
    args.conf, conf_from = conf_path(args, gbrowse)
    if args.check_config:
        return check_config(args.conf, gbrowse, conf_from)

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _daemon
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2Error, aws_session
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _metrics

    try:
        conf = load_conf(args.conf)
    except ConfError as exc:
        _print_errors(exc)
        return EX_CONFIG
    try:
        if conf.master.metrics_listen and not args.once:
            _metrics.require_prometheus_client()
    except _metrics.MetricsError as exc:
        print(f"gbrowse_aws_balancer: {exc}", file=sys.stderr)
        return EX_CONFIG
    # Everything that can be checked before the start is checked here: one line, no AWS call.
    try:
        for option, path in (("--pidfile", args.pidfile), ("--logfile", args.logfile), ("--report", args.report)):
            if path is not None:
                check_path_option(option, path)
        session = aws_session(os.environ)
    except (StartupError, EC2Error) as exc:
        print(f"gbrowse_aws_balancer: {exc}", file=sys.stderr)
        return EX_USAGE if isinstance(exc, StartupError) else EX_CONFIG

    notifier = _daemon.Notifier()
    # Under systemd journald stamps lines; by hand, lines look like the original's.
    try:
        _daemon.setup_logging(args.verbosity, args.logfile, stamped=not notifier.enabled)
    except OSError as exc:
        print(f"gbrowse_aws_balancer: --logfile {args.logfile}: {exc.strerror or exc}", file=sys.stderr)
        return EX_USAGE
    log = _daemon.LOG
    try:  # opened, like the log, before --user drops privileges
        report_file = JsonLines.opened(args.report) if args.report else None
    except OSError as exc:
        print(f"gbrowse_aws_balancer: --report {args.report}: {exc.strerror or exc}", file=sys.stderr)
        return EX_USAGE

    startup = None
    if args.background and not notifier.enabled and not args.once:
        startup = StartupPipe()
        daemonize(startup)  # returns in the detached child; the parent exits with the start's outcome
    pidfile = PidFile(args.pidfile) if args.pidfile and not args.once else None
    try:
        if pidfile:
            pidfile.acquire()
            pidfile.write()  # after daemonize: the pid of the process that holds the lock
        if args.user:
            drop_privileges(args.user)
        # As the user the balancer runs as: a farm it cannot publish would only spend.
        problem = None if args.dry_run else publish_problem(conf, gbrowse)
        if problem:
            log.error("%s", problem)
            if startup:
                startup.failed(problem)
            elif args.logfile:
                print(f"gbrowse_aws_balancer: {problem}", file=sys.stderr)
            return EX_CONFIG
        balancer, region, balancer_id, master, queue = _start(args, conf, session, gbrowse)
        serving = conf.master.metrics_listen and not args.once
        log.info(
            "Balancer %s: region %s, %s, polling %s every %s s%s%s",
            balancer_id,
            region,
            "master on EC2" if master.on_ec2 else "master outside EC2",
            masked_url(conf.master.server_status_url),
            conf.master.poll_interval * 60,
            f", metrics on http://{conf.master.metrics_listen}/metrics" if serving else "",
            " (dry run: nothing will be changed)" if args.dry_run else "",
        )

        def on_report(report: t.Any) -> None:
            line = json.dumps(report.as_dict(), sort_keys=True)
            if args.dry_run or args.once:
                print(line, flush=True)
            if report_file is not None:
                report_file.append(report.as_dict())

        if args.once:
            return run_once(balancer, on_report)

        signals = _daemon.Signals()
        signals.install()
        if queue is not None:  # its receiver wakes the loop through the signals' self-pipe
            from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._sqs import QueueWatcher

            queue = QueueWatcher(queue, signals.wake).start()
            log.info("Reading EC2's interruption events from %s", queue.queue.url)

        def reload_conf() -> BalancerConf | None:
            try:
                new = load_conf(args.conf)
            except ConfError as exc:
                log.error("%s is broken; keeping the running configuration:\n%s", args.conf, exc)
                return None
            log.info("Reloaded %s", args.conf)
            later = start_only_changes(conf, new, socket.gethostname())
            if later:
                log.warning(
                    "%s: %s changed; read only at start: the running balancer keeps what it started with "
                    "until it is restarted",
                    args.conf,
                    ", ".join(later),
                )
            return new

        if startup:
            startup.ready()
        return _daemon.run(
            balancer, signals=signals, notifier=notifier, reload_conf=reload_conf, on_report=on_report, queue=queue
        )
    except (StartupError, EC2Error) as exc:
        if startup:
            startup.failed(str(exc))
            log.error("Cannot start: %s", exc)
        else:
            if args.logfile:
                log.error("Cannot start: %s", exc)
            print(f"gbrowse_aws_balancer: {exc}", file=sys.stderr)
        return EX_FAIL
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # Once daemonized stderr is /dev/null: an unexpected error must reach the log.
        log.critical("Unexpected error; the balancer stops", exc_info=True)
        if startup:
            startup.failed(f"unexpected error during start-up: {exc} (details in the log)")
        return EX_FAIL
    finally:
        if pidfile:
            pidfile.release()
        if report_file is not None:
            report_file.close()


def _start(
    args: argparse.Namespace, conf: BalancerConf, session: t.Any, gbrowse: GBrowseLayout
) -> tuple[t.Any, str, str, t.Any, t.Any]:
    """The balancer object, its region, its id, the master and the interruption queue (``_sqs.Queue``,
    None without one, in a dry run or --once): start-up's AWS-facing part.

    The queue's SQS client is the EC2 client's twin (same credentials,
    endpoint rules and retries), in the queue's region when its URL names one.
    """
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _daemon
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, make_client, resolved_region
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import discover_master
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metadata import InstanceMetadata
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import MetricsError, start_metrics
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import LoadMeter

    hostname = socket.gethostname()
    master = discover_master(conf, InstanceMetadata())
    region = resolved_region(conf.slave.region, os.environ, session, master_region=master.region)
    balancer_id = conf.resolved_balancer_id(hostname)
    keys = credentials(args, os.environ)
    client = make_client(region, **keys)
    try:  # after daemonize and --user: the server's thread lives in the daemon, as its user
        metrics = start_metrics(None if args.once else conf.master.metrics_listen)
    except MetricsError as exc:
        raise StartupError(str(exc)) from None
    metrics.watch_ec2(client)
    balancer = _daemon.Balancer(
        conf,
        ec2=EC2(client, balancer_id),
        meter=LoadMeter(conf.master.server_status_url, timeout=conf.master.status_timeout),
        master=master,
        dry_run=args.dry_run,
        ssh_key=args.ssh_key,
        gbrowse_conf_dir=gbrowse.conf_dir,
        databases=gbrowse.databases,  # the slaves find the synced databases at the master's path
        **recording(args, conf, hostname),
        metrics=metrics,
    )
    queue = None
    url = conf.master.interruption_queue
    if url and not args.dry_run and not args.once:  # a dry run must not take another balancer's events
        from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._sqs import Queue, queue_region

        # Long polls of up to WAIT_SECONDS: the read timeout is that plus the usual 30 s.
        queue = Queue(make_client(queue_region(url) or region, service="sqs", read_timeout=50.0, **keys), url)
    return balancer, region, balancer_id, master, queue


def recording(args: argparse.Namespace, conf: BalancerConf, hostname: str) -> dict[str, t.Any]:
    """Where a running balancer records itself: the state file (status reads it) and the history.

    ``--once`` records nothing: it is not a running balancer. A state file that
    cannot be written is no reason not to balance: it is logged (here, and when
    each write's problem changes) and ``status`` says the balancer is not running.
    """
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import LOG

    if args.once:
        return {}
    state_file = conf.resolved_state_file(hostname)
    problem = writable_directory(state_file)
    if problem:
        LOG.warning("state_file %s: %s; `gbrowse_aws_balancer status` will not see this balancer", state_file, problem)
    history = conf.master.history_file
    return {
        "state_file": state_file,
        "history": JsonLines(history, max_bytes=conf.master.history_max_bytes) if history else None,
        "identity": {"balancer_id": conf.resolved_balancer_id(hostname), "conf": conf.path, "host": hostname},
    }


def run_once(balancer: t.Any, on_report: t.Callable[[t.Any], None]) -> int:
    """Baseline, one poll interval, one poll: the JSON report on stdout."""
    balancer.sample()
    time.sleep(balancer.conf.master.poll_interval * 60)
    load, error = balancer.sample()
    if load is None or load.signal(balancer.conf.master.load_signal) is None:
        print(f"gbrowse_aws_balancer: cannot measure the load: {error or 'no rate'}", file=sys.stderr)
        return EX_FAIL
    on_report(balancer.poll(load, error, sampled=True))
    return EX_OK


if __name__ == "__main__":
    sys.exit(balancer_main())
