# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``gbrowse_aws_balancer``: the original's options, plus --check-config, --once, --dry-run."""

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
import sys
import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import (
    BalancerConf,
    ConfError,
    load_conf,
    summary,
)

DEFAULT_CONF = "/etc/gbrowse2/aws_balancer.conf"

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
    longs = [a.option_strings[0][2:] for a in build_parser()._actions if a.option_strings[0].startswith("--")]
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        name, sep, value = arg.partition("=")
        if name in SHORT:
            name = SHORT[name]
        elif name[:1] == "-" and name[1:2] != "-" and len(name) > 2:
            if any(opt.startswith(name[1:].replace("_", "-")) or opt.startswith(name[1:]) for opt in longs):
                name = "-" + name
        if name in ("--check_config", "--dry_run"):
            name = name.replace("_", "-")
        out.append(name + sep + value)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gbrowse_aws_balancer",
        description="Keep a farm of GBrowse render slaves on EC2 Spot sized to the master's Apache load.",
        epilog="Credentials: the instance's IAM role, the AWS_* variables or shared config, "
        "EC2_ACCESS_KEY/EC2_SECRET_KEY, or a prompt on a terminal. Options may be abbreviated.",
        allow_abbrev=True,
    )
    p.add_argument(
        "--conf", default=DEFAULT_CONF, metavar="FILE", help=f"balancer configuration (default {DEFAULT_CONF})"
    )
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
    return p


def _print_errors(exc: ConfError) -> None:
    for line in exc.errors:
        print(line, file=sys.stderr)


def check_config(path: str) -> int:
    try:
        conf = load_conf(path)
    except ConfError as exc:
        _print_errors(exc)
        return EX_CONFIG
    print(summary(conf, socket.gethostname()))
    return EX_OK


# --------------------------------------------------------------------------
# pid file, daemon, privileges


class PidFile:
    """A pid file locked with flock while the daemon lives: a stale file is never mistaken for a live one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise SystemExit(f"gbrowse_aws_balancer: already running (pid {read_pid(self.path)}, {self.path})")
            raise
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
        with open(path, encoding="ascii") as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def kill_daemon(pidfile: str | None, wait: float = 900.0) -> int:
    """--kill: SIGTERM the daemon named by the pid file, then wait for it to finish its clean-up."""
    if not pidfile:
        print("gbrowse_aws_balancer: --kill needs --pidfile", file=sys.stderr)
        return EX_USAGE
    pid = read_pid(pidfile)
    if pid is None:
        print(f"gbrowse_aws_balancer: no pid in {pidfile}; is the daemon running?", file=sys.stderr)
        return EX_FAIL
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"gbrowse_aws_balancer: process {pid} from {pidfile} is not running", file=sys.stderr)
        return EX_FAIL
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return EX_OK
        time.sleep(0.2)
    print(f"gbrowse_aws_balancer: process {pid} still running after {wait:.0f} s", file=sys.stderr)
    return EX_FAIL


def daemonize() -> None:
    """Classic double fork; stdio to /dev/null (the log goes to --logfile)."""
    if os.fork() > 0:
        os._exit(0)
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
        raise SystemExit(f"gbrowse_aws_balancer: --user: no such user {user!r}")
    if os.getuid() == entry.pw_uid:
        return
    if os.getuid() != 0:
        raise SystemExit("gbrowse_aws_balancer: --user needs the balancer to be started as root")
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


def balancer_main(argv: t.Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    if args.kill:
        return kill_daemon(args.pidfile)
    if args.check_config:
        return check_config(args.conf)

    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _daemon
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, EC2Error, make_client
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import discover_master
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metadata import InstanceMetadata
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import LoadMeter

    try:
        conf = load_conf(args.conf)
    except ConfError as exc:
        _print_errors(exc)
        return EX_CONFIG

    notifier = _daemon.Notifier()
    # Under systemd journald stamps lines; by hand, lines look like the original's.
    _daemon.setup_logging(args.verbosity, args.logfile, stamped=not notifier.enabled)
    log = _daemon.LOG

    pidfile = PidFile(args.pidfile) if args.pidfile and not args.once else None
    if pidfile:
        pidfile.acquire()
    if args.background and not notifier.enabled:
        daemonize()
    if pidfile:
        pidfile.write()
    if args.user:
        drop_privileges(args.user)

    try:
        hostname = socket.gethostname()
        metadata = InstanceMetadata()
        master = discover_master(conf, metadata)
        candidates = (conf.slave.region, master.region, os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION"))
        region = next(filter(None, candidates), "us-east-1")
        balancer_id = conf.resolved_balancer_id(hostname)
        client = make_client(region, **credentials(args, os.environ))
        balancer = _daemon.Balancer(
            conf,
            ec2=EC2(client, balancer_id),
            meter=LoadMeter(conf.master.server_status_url, timeout=conf.master.status_timeout),
            master=master,
            dry_run=args.dry_run,
            ssh_key=args.ssh_key,
        )
        log.info(
            "Balancer %s: region %s, %s, polling %s every %s s%s",
            balancer_id,
            region,
            "master on EC2" if master.on_ec2 else "master outside EC2",
            conf.master.server_status_url,
            conf.master.poll_interval * 60,
            " (dry run: nothing will be changed)" if args.dry_run else "",
        )
        if args.once:
            return run_once(balancer)

        signals = _daemon.Signals()
        signals.install()

        def reload_conf() -> BalancerConf | None:
            try:
                new = load_conf(args.conf)
            except ConfError as exc:
                log.error("SIGHUP: %s is broken; keeping the running configuration:\n%s", args.conf, exc)
                return None
            log.info("SIGHUP: reloaded %s", args.conf)
            return new

        on_report = _print_report if args.dry_run else None
        return _daemon.run(balancer, signals=signals, notifier=notifier, reload_conf=reload_conf, on_report=on_report)
    except EC2Error as exc:
        log.error("%s", exc)
        return EX_FAIL
    except Exception:  # pylint: disable=broad-exception-caught
        # Once daemonized stderr is /dev/null: an unexpected error must reach the log.
        log.critical("Unexpected error; the balancer stops", exc_info=True)
        return EX_FAIL
    finally:
        if pidfile:
            pidfile.release()


def _print_report(report: t.Any) -> None:
    print(json.dumps(report.as_dict(), sort_keys=True), flush=True)


def run_once(balancer: t.Any) -> int:
    """Baseline, one poll interval, one poll: the JSON report on stdout."""
    balancer.sample()
    time.sleep(balancer.conf.master.poll_interval * 60)
    load, error = balancer.sample()
    if load is None or load.signal(balancer.conf.master.load_signal) is None:
        print(f"gbrowse_aws_balancer: cannot measure the load: {error or 'no rate'}", file=sys.stderr)
        return EX_FAIL
    report = balancer.poll(load, error, sampled=True)
    _print_report(report)
    return EX_OK


if __name__ == "__main__":
    sys.exit(balancer_main())
