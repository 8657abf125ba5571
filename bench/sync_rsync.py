#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a second sync costs: playbooks/sync.yml after 1 % of the files changed, beside a bare rsync.

A master tree of FILES files of random data (SIZE bytes on average) is
synced once (full copy to a new volume), then FRACTION of its files are
rewritten and it is synced again: the second sync starts from the first
one's snapshot (tests/support/staging.py's SyncLab: moto, ext4 images behind
the volumes, a real staging host). Its rsync figures come from the
playbook's summary. The same change is then copied with a bare ``rsync -a
--delete`` over ssh to another test host that holds the old tree: what rsync
alone moves, without the playbook, the volume or the snapshot.

    sudo .venv/bin/python bench/sync_rsync.py          # --files 5000 --size 100000 --fraction 0.01
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from ansible_collections.gmod.gbrowse_aws.tests.support import testhost  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.staging import SyncLab, can_host, change_files, make_tree  # noqa: E402


def bare_rsync(host: testhost.TestHost, src: Path, dest: str) -> tuple[float, int, int]:
    """rsync -a --delete over ssh as root: (seconds, bytes sent, bytes received)."""
    ssh = " ".join(["ssh", *testhost.SSH_OPTIONS, "-i", str(testhost.ssh_key())])
    start = time.monotonic()
    out = subprocess.run(
        ["rsync", "-a", "--delete", "--stats", "--no-human-readable", "-e", ssh, f"{src}/", f"root@{host.address}:{dest}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    seconds = time.monotonic() - start
    sent = int(re.search(r"Total bytes sent: (\d+)", out).group(1))
    received = int(re.search(r"Total bytes received: (\d+)", out).group(1))
    return seconds, sent, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=100_000, help="average file size in bytes")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of the files rewritten before the second sync")
    args = parser.parse_args()
    why = can_host()
    if why:
        print(f"skipped: {why}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="gbrowse-aws-bench-sync-"))
    try:
        master = work / "master" / "databases"
        total = make_tree(master, args.files, args.size)
        print(f"master tree: {args.files} files, {total / 1e6:.1f} MB of random data")
        with SyncLab(work / "lab") as lab:
            first = lab.sync(databases=str(master))
            if first.returncode:
                print(first.output[-3000:])
                return 1
            with testhost.TestHost("bench-bare-rsync", work / "hosts") as bare:
                bare.run("mkdir -p /data")
                full_bare = bare_rsync(bare, master, "/data")
                files, changed = change_files(master, args.fraction)
                print(f"changed: {files} files, {changed / 1e6:.2f} MB ({100 * changed / total:.2f} % of the bytes)")
                second = lab.sync(databases=str(master))
                if second.returncode:
                    print(second.output[-3000:])
                    return 1
                bare_seconds, bare_sent, bare_received = bare_rsync(bare, master, "/data")
        rows = []
        for name, run in (("first sync (full copy)", first), ("second sync", second)):
            stats = run.result["rsync"][0]
            rows.append((name, run.seconds, run.result["live_seconds"], stats["sent"], stats["received"], stats["transferred_size"]))
        print()
        print("| run | playbook s | rsync pass s | rsync sent bytes | received bytes | transferred file bytes |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, seconds, live, sent, received, size in rows:
            print(f"| {name} | {seconds:.1f} | {live:.2f} | {sent} | {received} | {size} |")
        print(f"| bare rsync -a, full copy | - | {full_bare[0]:.2f} | {full_bare[1]} | {full_bare[2]} | - |")
        print(f"| bare rsync -a, same change | - | {bare_seconds:.2f} | {bare_sent} | {bare_received} | - |")
        print()
        sent = rows[1][3]
        print(f"second sync sent {sent} bytes = {100 * sent / total:.2f} % of the data; the changed files are "
              f"{100 * changed / total:.2f} %; bare rsync sent {bare_sent} bytes ({100 * bare_sent / total:.2f} %)")
        print(json.dumps({"boot_seconds": lab.hosts.boot_seconds}))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
