# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``gbrowse_sync_aws_slave``: the original sync command, running playbooks/sync.yml.

Takes the original's options (``--conf --mysql --postgres --access_key
--secret_key --verbosity``) the way Perl's Getopt::Long took them: long names
with one dash or two, any unambiguous abbreviation (``-c``, ``--con``), in any
case, ``--opt value`` or ``--opt=value``. The AWS keys go to ansible-playbook
through its environment, never its command line, where ``ps`` would show
them; so does everything else, in a private file of extra variables. Like the
original it must run as root and re-runs itself through ``sudo`` otherwise.
Prints the original's closing lines::

    data stored in snapshot(s) snap-12345
    updated conf file, previous version in /etc/gbrowse/aws_balancer.conf.bak
"""

from __future__ import annotations

# This file is a command-line front, not a module: it prints, exits and runs
# ansible-playbook like any command does.
# pylint: disable=ansible-bad-function

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import find_layout
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._getopt import getopt_argv

#: The collection's root: plugins/module_utils/ is two levels below it.
COLLECTION = Path(__file__).resolve().parents[2]
PLAYBOOK = COLLECTION / "playbooks" / "sync.yml"
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "EC2_ACCESS_KEY", "EC2_SECRET_KEY")

#: A file in rsync's --log-file with the playbook's --log-file-format=%i|%l|%n (after rsync's date and pid).
_COPIED = re.compile(r"\[\d+\] [<>]f[^|]*\|(\d+)\|")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gbrowse_sync_aws_slave",
        description=(
            "Synchronize the GBrowse master's databases (and MySQL/PostgreSQL data) to an EBS snapshot that new "
            "render slaves boot with, and record it in aws_balancer.conf. Runs the Ansible playbook "
            "gmod.gbrowse_aws.sync; see docs/sync.md."
        ),
        epilog=(
            "Options may be abbreviated and written with one dash (-conf, -c). AWS keys also come from "
            "EC2_ACCESS_KEY/EC2_SECRET_KEY or the standard AWS chain (AWS_* variables, profile, instance role)."
        ),
        allow_abbrev=True,
    )
    original = parser.add_argument_group("options of the original script")
    original.add_argument(
        "-c", "--conf", metavar="FILE",
        help="aws_balancer.conf (default: the one in GBrowse's configuration directory, found as GBrowse finds it)",
    )  # fmt: skip
    original.add_argument("-m", "--mysql", metavar="DIR", help="MySQL data directory to copy too, e.g. /var/lib/mysql")
    original.add_argument("-p", "--postgres", metavar="DIR", help="PostgreSQL data directory to copy too, e.g. /var/lib/postgresql")
    original.add_argument("-a", "--access_key", metavar="KEY", help="AWS access key id (better: EC2_ACCESS_KEY in the environment)")
    original.add_argument("-s", "--secret_key", metavar="KEY", help="AWS secret access key (better: EC2_SECRET_KEY in the environment)")
    original.add_argument(
        "-v", "--verbosity", type=int, default=3, metavar="N",
        help="0 errors only, 1 changes, 2 all steps, 3 (default) everything, 4 and up Ansible's -v, -vv, ...",
    )  # fmt: skip
    ours = parser.add_argument_group("more options")
    ours.add_argument(
        "--databases", metavar="DIR",
        help="GBrowse databases directory (default: GBrowse's own, from GBrowse.conf's db_base or GBrowse::ConfigData)",
    )  # fmt: skip
    ours.add_argument("--dry-run", action="store_true", help="show what would be launched and copied, change nothing")
    ours.add_argument(
        "--db-consistency", choices=("stop", "live"),
        help="stop (default): stop the database services for a short final pass; live: copy them running",
    )  # fmt: skip
    ours.add_argument("--keep-snapshots", type=int, metavar="N", help="keep only the newest N data snapshots of this master")
    ours.add_argument(
        "-e", "--extra-vars", action="append", default=[], metavar="VARS",
        help="more playbook settings (gbrowse_sync_*=VALUE, or @FILE), as ansible-playbook -e takes them",
    )  # fmt: skip
    return parser


def normalize(argv: t.Sequence[str]) -> list[str]:
    """Getopt::Long spellings to argparse ones: ``-conf`` -> ``--conf``, ``--CONF`` -> ``--conf``."""
    return getopt_argv(argv, _parser())


def parse_args(argv: t.Sequence[str] | None = None) -> argparse.Namespace:
    args = _parser().parse_args(normalize(sys.argv[1:] if argv is None else argv))
    if bool(args.access_key) != bool(args.secret_key):
        _parser().error("give both --access_key and --secret_key, or neither")
    if args.conf is None or args.databases is None:
        gbrowse = find_layout()
        args.conf = args.conf or gbrowse.balancer_conf
        args.databases = args.databases or gbrowse.databases
    return args


def playbook_vars(args: argparse.Namespace, result_file: str, progress_log: str) -> dict[str, t.Any]:
    """The playbook settings the options stand for (never the keys)."""
    values: dict[str, t.Any] = {
        "gbrowse_sync_conf": os.path.abspath(args.conf),
        "gbrowse_sync_result_file": result_file,
        "gbrowse_sync_progress_log": progress_log,
    }
    for option, name in (("mysql", "mysql"), ("postgres", "postgres"), ("databases", "databases")):
        if getattr(args, option):
            values[f"gbrowse_sync_{name}"] = os.path.abspath(getattr(args, option))
    if args.db_consistency:
        values["gbrowse_sync_db_consistency"] = args.db_consistency
    if args.keep_snapshots is not None:
        values["gbrowse_sync_keep_snapshots"] = args.keep_snapshots
    return values


def child_environment(args: argparse.Namespace, base: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """ansible-playbook's environment: the keys as the AWS SDK reads them, and the display settings."""
    env = dict(os.environ if base is None else base)
    access = args.access_key or env.get("EC2_ACCESS_KEY")
    secret = args.secret_key or env.get("EC2_SECRET_KEY")
    if access and secret:
        env["AWS_ACCESS_KEY_ID"] = access
        env["AWS_SECRET_ACCESS_KEY"] = secret
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
    env.pop("EC2_ACCESS_KEY", None)
    env.pop("EC2_SECRET_KEY", None)
    if args.verbosity <= 2:
        env["ANSIBLE_DISPLAY_SKIPPED_HOSTS"] = "false"
    if args.verbosity <= 1:
        env["ANSIBLE_DISPLAY_OK_HOSTS"] = "false"
    env.setdefault("ANSIBLE_RETRY_FILES_ENABLED", "false")
    env.setdefault("ANSIBLE_LOCALHOST_WARNING", "false")
    env.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
    return env


def copied(lines: t.Iterable[str]) -> tuple[int, int]:
    """Files and bytes that rsync's log ``lines`` say were copied."""
    files = size = 0
    for line in lines:
        match = _COPIED.search(line)
        if match:
            files += 1
            size += int(match.group(1))
    return files, size


class Progress(threading.Thread):
    """Follows rsync's log while the playbook runs: a line every ``every`` seconds while files are copied."""

    def __init__(self, path: str, every: float = 10.0) -> None:
        super().__init__(name="rsync-progress", daemon=True)
        self.path, self.every = path, every
        self.files = self.bytes = 0
        self._offset = 0
        self._stop = threading.Event()

    def read(self) -> bool:
        """Take in the log's complete new lines; whether there were copied files among them."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return False
        data = data[: data.rfind(b"\n") + 1]
        self._offset += len(data)
        files, size = copied(data.decode("utf-8", "replace").splitlines())
        self.files, self.bytes = self.files + files, self.bytes + size
        return files > 0

    def run(self) -> None:
        while not self._stop.wait(self.every):
            if self.read():
                print(f"rsync: {self.files} files ({bytes_to_human(self.bytes)}) copied so far", flush=True)

    def finish(self) -> None:
        self._stop.set()
        self.join()
        self.read()


def ansible_playbook() -> str:
    """ansible-playbook next to this Python (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / "ansible-playbook"
    if here.exists():
        return str(here)
    found = shutil.which("ansible-playbook")
    if not found:
        raise SystemExit("gbrowse_sync_aws_slave: ansible-playbook not found (pip install ansible-core)")
    return found


def command(args: argparse.Namespace, varfile: str) -> list[str]:
    cmd = [ansible_playbook(), str(PLAYBOOK)]
    for extra in args.extra_vars:
        cmd += ["-e", extra]
    cmd += ["-e", f"@{varfile}"]  # last: the options win over -e
    if args.dry_run:
        cmd.append("--check")
    if args.verbosity > 3:
        cmd.append("-" + "v" * min(args.verbosity - 3, 6))
    return cmd


def _become_root(argv: t.Sequence[str], args: argparse.Namespace) -> t.NoReturn:
    """Re-run through sudo, as the original did, with the keys in the environment rather than argv."""
    sudo = shutil.which("sudo")
    if not sudo:
        raise SystemExit("gbrowse_sync_aws_slave: must run as root (and sudo is not installed)")
    print(
        "This script needs root privileges in order to access all directories needed for synchronization.\n"
        "It will now invoke sudo to become the 'root' user temporarily. You may be prompted for your password.",
        file=sys.stderr,
    )
    env = dict(os.environ)
    if args.access_key:
        env["EC2_ACCESS_KEY"], env["EC2_SECRET_KEY"] = args.access_key, args.secret_key
    keep = [name for name in KEY_VARIABLES if name in env]
    rest = _without_keys(normalize(argv))
    cmd = [sudo] + ([f"--preserve-env={','.join(keep)}"] if keep else []) + [sys.executable, os.path.abspath(sys.argv[0])] + rest
    os.execve(sudo, cmd, env)


def _without_keys(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("-a", "-s") or (len(name) > 3 and ("--access_key".startswith(name) or "--secret_key".startswith(name))):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def main(argv: t.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if os.geteuid() != 0:
        _become_root(argv, args)
    if not PLAYBOOK.exists():
        raise SystemExit(f"gbrowse_sync_aws_slave: {PLAYBOOK} is missing")
    private = tempfile.mkdtemp(prefix="gbrowse-sync-cli-")  # mode 0700
    try:
        result_file = os.path.join(private, "result.json")
        varfile = os.path.join(private, "vars.json")
        progress = Progress(os.path.join(private, "rsync.log"))
        with open(os.open(varfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            json.dump(playbook_vars(args, result_file, progress.path), handle)
        cmd = command(args, varfile)
        quiet = args.verbosity == 0
        if not quiet:
            progress.start()
        try:
            proc = subprocess.run(
                cmd, env=child_environment(args), check=False,
                stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None, text=True,
            )  # fmt: skip
        finally:
            if not quiet:
                progress.finish()
        result: dict[str, t.Any] = {}
        if os.path.exists(result_file):
            with open(result_file, encoding="utf-8") as handle:
                result = json.load(handle)
        return _report(result, proc.returncode, proc.stdout if quiet else None, progress)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _report(result: t.Mapping[str, t.Any], returncode: int, output: str | None, progress: Progress) -> int:
    status = result.get("status")
    if status == "synced":
        if progress.files:
            print(f"rsync: {progress.files} files ({bytes_to_human(progress.bytes)}) copied in all")
        print(f"data stored in snapshot(s) {' '.join(result.get('data_snapshots') or [])}")
        backup = result.get("conf_backup")
        print(f"updated conf file{', previous version in ' + backup if backup else ''}")
        base = result.get("base_snapshot")
        print(
            f"rsync sent {result.get('sent_bytes', 0)} bytes for {result.get('data_bytes', 0)} bytes of data in "
            f"{result.get('data_files', 0)} files ({'incremental from ' + base if base else 'full copy'})"
        )
        if result.get("db_downtime_seconds") is not None:
            print(f"databases stopped for {result['db_downtime_seconds']} s for the final pass")
        for warning in result.get("warnings") or ():
            print(f"warning: {warning}", file=sys.stderr)
        return 0 if returncode == 0 else 1
    if status == "check":
        for text in result.get("plan") or ():
            print(text)
        print("dry run: nothing launched, nothing changed")
        return returncode
    if output:
        sys.stderr.write(output)
    failure = result.get("failure") or {}
    if failure:
        print(f"sync failed at \"{failure.get('step')}\": {failure.get('msg')}", file=sys.stderr)
        if result.get("conf") and os.path.exists(str(result["conf"])):
            print(f"{result['conf']} is unchanged", file=sys.stderr)
    for error in result.get("cleanup_errors") or ():
        print(f"clean-up incomplete: {error} (run: ansible-playbook gmod.gbrowse_aws.sync_cleanup)", file=sys.stderr)
    return returncode or 1


if __name__ == "__main__":
    sys.exit(main())
