# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gbrowse_sync_aws_slave's own logic: the original's option spellings, where the keys go, the progress it shows.

The command end to end (running the playbook against moto and a staging host)
is in tests/system/test_sync.py.
"""

from __future__ import annotations

import shutil
import subprocess
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._sync_cli import (
    Progress,
    _without_keys,
    child_environment,
    command,
    copied,
    normalize,
    parse_args,
    playbook_vars,
)


@pytest.mark.parametrize(
    "argv, conf",
    [
        (["-conf", "/a.conf"], "/a.conf"),
        (["--CONF=/b.conf"], "/b.conf"),
        (["-c", "/c.conf"], "/c.conf"),
        (["--con", "/d.conf"], "/d.conf"),
        ([], "/srv/gb/etc/aws_balancer.conf"),
    ],
)
def test_the_originals_spellings_of_conf(argv: list[str], conf: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GBROWSE_CONF", "/srv/gb/etc")  # the default is found as GBrowse finds its configuration
    assert parse_args(argv).conf == conf


def test_one_dash_long_options_and_abbreviations() -> None:
    args = parse_args(["-mysql", "/var/lib/mysql", "-postgres=/var/lib/postgresql", "-verb", "1"])
    assert (args.mysql, args.postgres, args.verbosity) == ("/var/lib/mysql", "/var/lib/postgresql", 1)
    assert normalize(["-e", "x=1", "--", "-conf"]) == ["-e", "x=1", "--", "-conf"]


def test_both_keys_or_neither(capsys: t.Any) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--access_key", "AKIA"])
    assert exc.value.code == 2
    assert "give both --access_key and --secret_key" in capsys.readouterr().err


def test_keys_go_to_the_environment_never_the_command_line() -> None:
    args = parse_args(["--access_key", "AKIAEXAMPLE", "--secret_key", "s3cr3t", "--mysql", "/var/lib/mysql"])
    values = playbook_vars(args, "/tmp/r.json", "/tmp/rsync.log")
    cmd = command(args, "/tmp/vars.json")
    env = child_environment(args, {"EC2_ACCESS_KEY": "other", "EC2_SECRET_KEY": "other", "AWS_PROFILE": "p"})
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE" and env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert not {"EC2_ACCESS_KEY", "EC2_SECRET_KEY", "AWS_PROFILE"} & set(env)
    text = repr(values) + " ".join(cmd)
    assert "s3cr3t" not in text and "AKIAEXAMPLE" not in text
    assert values["gbrowse_sync_mysql"] == "/var/lib/mysql"
    assert values["gbrowse_sync_progress_log"] == "/tmp/rsync.log"
    assert cmd[-2:] == ["-e", "@/tmp/vars.json"]  # the options win over -e


def test_keys_are_dropped_from_the_arguments_sudo_sees() -> None:
    argv = normalize(["-c", "/a.conf", "-access_key", "AK", "--secret=SK", "-s", "SK2", "--acc", "AK2", "-v", "2"])
    assert _without_keys(argv) == ["-c", "/a.conf", "-v", "2"]


def test_dry_run_and_verbosity_become_ansible_playbook_options() -> None:
    assert command(parse_args(["--dry-run"]), "v.json")[-1] == "--check"
    assert command(parse_args(["-v", "5"]), "v.json")[-1] == "-vv"


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed (make setup installs it)")
def test_progress_counts_the_files_a_real_rsync_logs(tmp_path: t.Any) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "sub dir").mkdir(parents=True)
    (src / "a").write_bytes(b"x" * 1000)
    (src / "sub dir" / "b|c").write_bytes(b"y" * 2345)
    (src / "link").symlink_to("a")
    log = tmp_path / "rsync.log"
    rsync = ["rsync", "-a", f"--log-file={log}", "--log-file-format=%i|%l|%n", f"{src}/", f"{dest}/"]
    progress = Progress(str(log), every=3600)
    assert not progress.read()  # no log yet
    subprocess.run(rsync, check=True)
    assert progress.read()
    assert (progress.files, progress.bytes) == (2, 3345)  # files only: no directories, no symlink
    (src / "a").write_bytes(b"z" * 10)
    subprocess.run(rsync, check=True)
    assert progress.read()
    assert (progress.files, progress.bytes) == (3, 3355)
    assert not progress.read()  # nothing new
    assert copied(["2026/11/25 10:00:00 [42] <f.st......|77|databases/x.bam"]) == (1, 77)
