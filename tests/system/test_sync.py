# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/sync.yml against moto over HTTP and a real staging host.

The EC2 API is moto's; the staging instance is a real host (network namespace
+ systemd-nspawn, with sshd, rsync and e2fsprogs) booted at the private IP
moto assigned; volumes and snapshots are ext4 images that follow the API calls
(tests/support/volumes.py), so the second sync really starts from the first
one's snapshot. The master is this machine (connection local). The tests run
in file order and share one lab: each builds on the conf the one before left.
Needs root; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _ec2_data, _sync_lock
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import ACCESS_KEY, SECRET_KEY, boto3_client
from ansible_collections.gmod.gbrowse_aws.tests.support.staging import (
    VENV_BIN,
    SyncLab,
    can_host,
    change_files,
    make_tree,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.volumes import inspect_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, loop devices, systemd-nspawn")

FILES, SIZE = 500, 20_000  # about 10 MB in 500 files
GIB = 1 << 30


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    why = can_host()
    if why:
        pytest.skip(f"cannot host a staging instance here: {why}")
    with SyncLab(tmp_path_factory.mktemp("sync")) as lab:
        lab.state = {}
        yield lab
        assert lab.ebs.errors == []
        assert lab.hosts.errors == []
        assert lab.hosts.running() == [], "staging hosts left running"


@pytest.fixture(scope="module")
def master(lab):
    root = lab.workdir / "master"
    databases = root / "databases"
    make_tree(databases, FILES, SIZE)
    return root


def conf_snapshots(lab) -> list[str]:
    match = re.search(r"^data_snapshots\s*=\s*([^#\n]*)", lab.conf.read_text(), re.M)
    return match.group(1).split() if match else []


def assert_image_holds(lab, snapshot: str, trees: dict[str, Path]) -> str:
    """The snapshot's file system holds exactly ``trees`` (volume path -> master directory); returns ``ls``."""
    checks = " && ".join(
        f'test -z "$(rsync -naiHAXc --delete "{src}/" "$M/{dest}/")"' for dest, src in trees.items()
    )
    found = inspect_image(lab.ebs.snapshot_image(snapshot), f'{checks} && cd "$M" && ls -A')
    assert found.returncode == 0, f"snapshot {snapshot} differs from the master: {found.stderr}"
    return found.stdout


def assert_nothing_left(lab, *, referenced=()):
    left = lab.leftovers(referenced=referenced or conf_snapshots(lab))
    assert left == {}, f"left in moto or on this machine: {left}"
    assert not list((lab.workdir / "lock").glob("run-*")), "a run's private directory (its ssh key) was left"


def stop_ssh_masters(lab) -> None:
    """The ssh control masters a killed run left (they would exit by themselves within a minute)."""
    prefix = f"@{lab.subnet.cidr.rsplit('.', 1)[0]}.".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ansible_ssh = any(b"ControlPersist" in arg for arg in argv)  # not the lab's own ssh (mknod...)
        if argv and os.path.basename(argv[0]) == b"ssh" and ansible_ssh and any(prefix in arg for arg in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


def lock_file(lab) -> Path:
    return lab.workdir / "lock" / f"gbrowse_aws-sync-{lab.balancer_id}.lock"


# ---------------------------------------------------------------------------


def test_first_sync_puts_exactly_the_masters_tree_in_the_snapshot(lab, master):
    original = lab.conf.read_text()
    # A running balancer (a SysV script standing for it) is told to re-read the conf.
    balancer = Path(f"/etc/init.d/gbrowse-aws-balancer-test-{os.getpid()}")
    reloaded = lab.workdir / "balancer-reloaded"
    balancer.write_text(f'#!/bin/sh\ncase "$1" in status) exit 0;; reload) echo "$1" > {reloaded};; esac\n')
    balancer.chmod(0o755)
    try:
        run = lab.sync(databases=str(master / "databases"), balancer_service=balancer.name)
    finally:
        balancer.unlink()
    assert run.returncode == 0, run.output[-4000:]
    assert reloaded.read_text() == "reload\n"

    assert re.search(r"Launching a t3\.micro staging instance from ami-\w+ \(gbrowse-slave\) in subnet-\w+", run.output)
    assert "a new 1 GiB data volume: full copy" in run.output
    assert re.search(r"Copying at most \d+(\.\d+)? MB in \d+ files", run.output)
    result = run.result
    assert result["status"] == "synced" and not result["base_snapshot"]
    (snapshot,) = result["data_snapshots"]
    # The conf: the two lines changed, every other byte kept, the old file in .bak.
    assert (lab.conf.parent / "aws_balancer.conf.bak").read_text() == original
    new = lab.conf.read_text()
    assert re.search(rf"^data_snapshots = {snapshot} # synchronized with local filesystem on \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d \d{{4}}$", new, re.M)
    assert f"image_id = {lab.image_id}\n" in new
    kept = [line for line in original.splitlines() if not line.startswith(("data_snapshots", "image_id"))]
    assert [line for line in new.splitlines() if not line.startswith(("data_snapshots", "image_id"))] == kept
    # The snapshot: the master's tree, nothing else, with hard links, ACLs, xattrs, owners.
    listing = assert_image_holds(lab, snapshot, {"databases": master / "databases"})
    assert listing.split() == ["databases", "lost+found"]
    links = inspect_image(lab.ebs.snapshot_image(snapshot), 'stat -c %h "$M/databases/special/hardlink.bin"')
    assert links.stdout.strip() == "2"
    tags = {t["Key"]: t["Value"] for t in lab.ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["Tags"]}
    assert tags["gbrowse-aws:state"] == "recorded"
    assert tags["gbrowse-aws:lineage"] == lab.balancer_id
    assert tags["gbrowse-aws:layout"] == "ext4-label:gbrowse-data"
    assert tags["Name"].startswith("GBrowse data from ")
    assert_nothing_left(lab)
    assert not lock_file(lab).exists()
    lab.state["first"] = snapshot


def test_second_sync_through_the_command_sends_about_the_changed_bytes(lab, master):
    """gbrowse_sync_aws_slave, original spellings, keys on its command line but never on ansible-playbook's."""
    first = lab.state["first"]
    changed_files, changed_bytes = change_files(master / "databases", 0.01)
    # Check mode first: it launches and changes nothing, and from the file listing kept with the
    # first snapshot it knows what changed.
    before = lab.conf.read_bytes()
    lab.ebs.calls.clear()
    check = lab.sync(databases=str(master / "databases"), check=True)
    assert check.returncode == 0, check.output[-3000:]
    assert check.result["status"] == "check"
    assert re.search(r"Would launch a t3\.micro staging instance from ami-\w+ \(gbrowse-slave\)", check.output)
    assert f"data volume from {first} (1 GiB, taken " in check.output
    assert re.search(rf"Would copy about [\d.]+ KB in {changed_files} new or changed files \(and delete 0\) of", check.output), check.output[-3000:]
    assert not [c for c in lab.ebs.calls if not c.startswith("Describe")], lab.ebs.calls
    assert lab.conf.read_bytes() == before
    assert not lock_file(lab).exists()
    extra = lab.workdir / "extra.json"
    extra.write_text(json.dumps({k: v for k, v in lab.settings().items() if k not in ("gbrowse_sync_conf", "gbrowse_sync_result_file")}))
    env = {k: v for k, v in lab.env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    # The command as an admin installs it, with the playbook sync_command.yml.
    command = lab.workdir / "sbin" / "gbrowse_sync_aws_slave"
    command.parent.mkdir()
    installed = lab.sync(playbook="sync_command.yml", command_path=str(command))
    assert installed.returncode == 0, installed.output[-2000:]
    cmd = [
        str(command), "-c", str(lab.conf), "-databases", str(master / "databases"),
        "-access_key", ACCESS_KEY, "--secret", SECRET_KEY, "-verb", "1", "-e", f"@{extra}",
    ]  # fmt: skip
    seen = []
    stop = threading.Event()

    def watch() -> None:  # every ansible-playbook command line while the sync runs
        while not stop.wait(0.2):
            for proc in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    argv = proc.read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(b"ansible-playbook" in arg for arg in argv[:2]):
                    seen.append(b" ".join(argv))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = lab.run(cmd, env=env)
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.output[-4000:]
    assert seen, "never saw ansible-playbook running"
    assert not [argv for argv in seen if SECRET_KEY.encode() in argv or ACCESS_KEY.encode() in argv]
    snapshot = re.search(r"^data stored in snapshot\(s\) (snap-\w+)$", run.output, re.M).group(1)
    assert re.search(r"^updated conf file, previous version in .*aws_balancer\.conf\.bak$", run.output, re.M)
    # The progress it followed in rsync's log: exactly the changed files.
    assert re.search(rf"^rsync: {changed_files} files \([\d.]+ [KM]B\) copied in all$", run.output, re.M), run.output[-2000:]
    figures = re.search(r"^rsync sent (\d+) bytes for (\d+) bytes of data in (\d+) files \(incremental from (snap-\w+)\)$", run.output, re.M)
    assert figures, run.output[-2000:]
    sent, data = int(figures.group(1)), int(figures.group(2))
    assert figures.group(4) == first and snapshot != first
    # About the changed bytes: 1 % of the files, plus the file list and checksums.
    assert changed_bytes <= sent < changed_bytes + 0.02 * data, (sent, changed_bytes, data)
    assert_image_holds(lab, snapshot, {"databases": master / "databases"})
    assert conf_snapshots(lab) == [snapshot]
    assert_nothing_left(lab)
    lab.state["second"] = {"sent": sent, "changed": changed_bytes, "files": changed_files, "data": data, "seconds": run.seconds}
    print(f"\nsecond sync: {changed_files} files changed ({changed_bytes} bytes), rsync sent {sent} of {data} bytes, {run.seconds} s")


def test_a_sync_needing_more_room_grows_the_volume(lab, master):
    # 1100 MiB of headroom does not fit on the 1 GiB volume of the last snapshot.
    run = lab.sync(databases=str(master / "databases"), headroom_mib=1100)
    assert run.returncode == 0, run.output[-4000:]
    assert run.result["grown"] and run.result["volume_gib"] == 2
    # resize2fs online where the kernel allows it (EC2); here, without CAP_SYS_RESOURCE, unmounted.
    assert run.result["grow_method"] in ("online", "offline")
    print(f"\ngrown to 2 GiB, file system resized {run.result['grow_method']}")
    (snapshot,) = run.result["data_snapshots"]
    assert lab.ebs.snapshot_image(snapshot).stat().st_size == 2 * GIB
    assert lab.ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["VolumeSize"] == 2
    size = inspect_image(lab.ebs.snapshot_image(snapshot), 'df -B1 --output=size "$M" | tail -n 1')
    assert int(size.stdout) > 1.9 * GIB
    assert_image_holds(lab, snapshot, {"databases": master / "databases"})
    assert_nothing_left(lab)


WRITER = """
import os, signal, sys, time
path, pidfile = sys.argv[1], sys.argv[2]
stop = False
def term(*args):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
with open(path, "a") as out:
    out.write("started\\n")
    n = 0
    open(pidfile, "w").write(str(os.getpid()))
    while not stop:
        n += 1
        out.write(f"transaction {n}\\n")
        out.flush()
        time.sleep(0.005)
    out.write("clean shutdown\\n")
os.unlink(pidfile)
"""


def test_database_files_get_a_final_pass_with_the_database_stopped(lab, master):
    """A stand-in database writes to its data directory until stopped; the snapshot must hold it stopped."""
    mysql = master / "mysql"
    (mysql / "gbrowse").mkdir(parents=True)
    postgres = master / "postgresql" / "15" / "main"
    postgres.mkdir(parents=True)
    (postgres / "PG_VERSION").write_text("15\n")
    writer = lab.workdir / "writer.py"
    writer.write_text(WRITER)
    log, pidfile = mysql / "gbrowse" / "ibdata1", lab.workdir / "writer.pid"
    start = f"sh -c 'setsid {sys.executable} {writer} {log} {pidfile} </dev/null >/dev/null 2>&1 &'"
    stop = f"sh -c 'pid=$(cat {pidfile}) && kill -TERM $pid && while kill -0 $pid 2>/dev/null; do sleep 0.05; done'"
    subprocess.run(start, shell=True, check=True)
    try:
        for dummy in range(100):
            if pidfile.exists():
                break
            time.sleep(0.05)
        run = lab.sync(
            databases=str(master / "databases"), mysql=str(mysql), postgres=str(master / "postgresql"),
            db_services=[], db_stop_commands=[stop], db_start_commands=[start], keep_snapshots=1,
        )  # fmt: skip
        assert run.returncode == 0, run.output[-4000:]
    finally:
        if pidfile.exists():
            subprocess.run(["sh", "-c", stop], check=False)
    result = run.result
    passes = [(r["tree"], r["pass"]) for r in result["rsync"]]
    assert passes == [("databases", "live"), ("mysql", "live"), ("postgresql", "live"), ("mysql", "final"), ("postgresql", "final")]
    assert 0 < result["db_downtime_seconds"] < 30
    (snapshot,) = result["data_snapshots"]
    copied = inspect_image(lab.ebs.snapshot_image(snapshot), 'cat "$M/lib/mysql/gbrowse/ibdata1"; echo; ls "$M" "$M/lib"')
    lines = copied.stdout.split("\n")
    # Consistent: taken while stopped (ends with the clean shutdown), and the master went on after the restart.
    stopped_copy = lines[: lines.index("clean shutdown") + 1]
    assert stopped_copy[-2].startswith("transaction ")
    assert log.read_text().startswith("\n".join(stopped_copy) + "\nstarted\n")
    assert "databases" in copied.stdout and "mysql" in copied.stdout and "postgresql" in copied.stdout
    assert_image_holds(lab, snapshot, {"databases": master / "databases", "lib/postgresql": master / "postgresql"})
    assert lab.recorded_snapshots() == [snapshot]  # keep_snapshots=1 pruned the older ones
    assert_nothing_left(lab)


SLAVE_STUB = """#!/bin/sh
# Stands for the slave image's GBrowse slave: notes how it found its data.
for target in /srv/gbrowse-data /opt/gbrowse/databases /opt/gbrowse/lib/mysql /opt/gbrowse/lib/postgresql /var/lib/gbrowse/databases; do
    findmnt -n -o TARGET,SOURCE "$target" || echo "$target not-mounted"
done > /run/gbrowse-slave.mounts
echo "$@" > /run/gbrowse-slave.started
"""


def test_a_slave_launched_as_the_balancer_launches_it_finds_the_synced_data(lab, master):
    """The balancer's block device mappings and user data (plugins/module_utils/_ec2_data.py) meet the sync's volume layout."""
    (snapshot,) = conf_snapshots(lab)
    raw = lab.ec2.describe_images(ImageIds=[lab.image_id])["Images"][0]
    image = _ec2_data.Image(raw["ImageId"], raw.get("Name"), raw["RootDeviceName"], tuple(raw.get("BlockDeviceMappings", ())))
    lab.hosts.image_files = {"/opt/gbrowse/etc/init.d/gbrowse-slave": (SLAVE_STUB, 0o755)}
    ec2 = boto3_client(lab.ebs.url, region=lab.moto.region)  # through the EBS proxy, as the balancer would be
    instance = ec2.run_instances(
        ImageId=lab.image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=lab.subnet_id,
        BlockDeviceMappings=_ec2_data.block_device_mappings(image, [snapshot]),
        UserData=_ec2_data.default_user_data((8101, 8102), "/var/lib/gbrowse/databases"),  # a Debian master's
    )["Instances"][0]["InstanceId"]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while instance not in lab.hosts.boot_seconds and time.monotonic() < deadline:
            assert not lab.hosts.errors, lab.hosts.errors
            time.sleep(0.2)
        host = lab.hosts.host(instance)
        log = host.run("cat /var/log/cloud-init-output.log", check=False).stdout
        assert host.run("cat /run/gbrowse-slave.started").stdout == "start 8101 8102\n", log
        mounts = dict(line.split(None, 1) for line in host.run("cat /run/gbrowse-slave.mounts").stdout.splitlines())
        assert mounts["/srv/gbrowse-data"].startswith("/dev/"), (mounts, log)
        trees = host.run("cd /srv/gbrowse-data && ls -d databases lib/mysql lib/postgresql 2>/dev/null", check=False).stdout.split()
        assert "databases" in trees
        for tree in ("databases", "lib/mysql", "lib/postgresql"):  # bind mounts show the tree in the source
            wanted = f"{mounts['/srv/gbrowse-data']}[/{tree}]" if tree in trees else "not-mounted"
            assert mounts[f"/opt/gbrowse/{tree}"] == wanted, (mounts, log)
        assert mounts["/var/lib/gbrowse/databases"] == f"{mounts['/srv/gbrowse-data']}[/databases]", (mounts, log)
        listing = host.run("cd /opt/gbrowse/databases && find . -type f -exec md5sum {} + | sort -k 2").stdout
        expected = subprocess.run(
            "find . -type f -exec md5sum {} + | sort -k 2", shell=True, cwd=master / "databases", capture_output=True, text=True, check=True
        ).stdout
        assert listing == expected
    finally:
        lab.hosts.image_files = {}
        ec2.terminate_instances(InstanceIds=[instance])
    assert_nothing_left(lab)


def test_a_second_sync_is_refused_while_one_holds_the_lock(lab, master):
    # A lock held by a live process (this one) as a running sync would hold it.
    lock_file(lab).write_text(json.dumps({
        "token": "held-by-the-test", "host": "testhost", "since": time.time(), "purpose": "a sync in progress",
        "pid": os.getpid(), "start": _sync_lock.process_start(os.getpid()),
    }))  # fmt: skip
    before = lab.conf.read_bytes()
    try:
        run = lab.sync(databases=str(master / "databases"))
    finally:
        held = lock_file(lab).read_text()
        lock_file(lab).unlink()
    assert run.returncode != 0
    assert 'The sync failed at "Take the sync lock"' in run.output
    assert f"a sync in progress by pid {os.getpid()}" in run.output
    assert "held-by-the-test" in held  # not taken over, not released
    assert lab.conf.read_bytes() == before
    assert_nothing_left(lab)


NOLOGIN = "System is booting up. Unprivileged users are not permitted to log in yet. Please come back later.\n"


def test_a_staging_instance_that_never_lets_us_in_is_told_apart_by_how_it_answers(lab, master):
    """Still booting (sshd answers, pam_nologin refuses) or unreachable (no sshd): the failure says which, and EC2's view."""
    before = lab.conf.read_bytes()
    lab.hosts.image_files = {"/etc/nologin": (NOLOGIN, 0o644)}  # what a host shows until its boot ends
    try:
        booting = lab.sync(databases=str(master / "databases"), ssh_timeout=15)
    finally:
        lab.hosts.image_files = {}
    lab.hosts.boot = False  # the instance runs, but nothing ever answers at its address
    try:
        unreachable = lab.sync(databases=str(master / "databases"), ssh_timeout=15)
    finally:
        lab.hosts.boot = True
    for run, how in ((booting, "it is still booting: its sshd answers but does not let users in yet (pam_nologin)"),
                     (unreachable, "it is unreachable: no ssh banner from 10.200.")):  # fmt: skip
        assert run.returncode != 0
        assert 'The sync failed at "Wait for the staging instance to answer over ssh"' in run.output, run.output[-3000:]
        message = run.result["failure"]["msg"]
        assert how in message, message
        assert "after 15 s (gbrowse_sync_ssh_timeout); last ssh error: " in message, message
        assert re.search(r"EC2: state running, status checks: system \w+, instance \w+; console output, last \d+ lines:", message), message
        assert lab.conf.read_bytes() == before
        assert not lock_file(lab).exists()
        assert_nothing_left(lab)
    assert "System is booting up" in booting.result["failure"]["msg"]


def test_a_killed_sync_is_swept_by_sync_cleanup(lab, master):
    before = lab.conf.read_bytes()
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), str(Path(__file__).parents[2] / "playbooks" / "sync.yml"),
         "-e", json.dumps(lab.settings(gbrowse_sync_databases=str(master / "databases")))],
        env=lab.env(), cwd=lab.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(v.device for v in list(lab.ebs.volumes.values())) and time.monotonic() < deadline:
            assert proc.poll() is None, "the sync ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: ansible-playbook and its workers
        proc.wait()
        stop_ssh_masters(lab)
    assert lab.leftovers(referenced=conf_snapshots(lab)), "the killed sync left nothing to sweep"
    assert lock_file(lab).exists()
    run = lab.sync(playbook="sync_cleanup.yml")
    assert run.returncode == 0, run.output[-4000:]
    assert re.search(r"Removed: instances i-\w+;.* key_pairs gbrowse-sync-\S+; security_groups sg-\w+", run.output), run.output[-2500:]
    assert "(a stale lock of " in run.output
    assert re.search(r"private_directories \S+/lock/run-synctest-", run.output)
    assert lab.conf.read_bytes() == before
    assert not lock_file(lab).exists()
    assert_nothing_left(lab)


# (actions denied: {action: times, or (times, after action)}, the step named in the failure, what happens)
#   fails:   the sync fails naming the step; conf unchanged; nothing left in moto
#   cleanup: ... and the clean-up fails too: the lock stays, sync_cleanup.yml removes the rest
#   warns:   the step comes after the conf update (the commit): the sync succeeds with a warning
FAILURES = [
    # worker 1
    [
        ({"DescribeImages": 1}, "Find the slave image", "fails"),
        ({"AuthorizeSecurityGroupIngress": 1}, "Create a temporary security group letting this master in over ssh", "fails"),
        ({"CreateVolume": 1}, "Create the data volume and attach it to the staging instance", "fails"),
        ({"DescribeSnapshots": (1, "CreateSnapshot"), "DeleteSnapshot": 2}, "Wait for the snapshot to complete", "cleanup"),
        ({}, "Copy the data", "unreachable"),
    ],
    # worker 2: the conf gets a snapshot (the commit of the "warns" case): a base to grow from
    [
        ({"ImportKeyPair": 1}, "Import the temporary key as an EC2 key pair", "fails"),
        ({"RunInstances": 1}, "Launch the staging instance", "fails"),
        ({"CreateTags": 1, "DeleteKeyPair": 1, "DeleteSecurityGroup": 1}, "Tag the snapshot as recorded in the conf", "warns"),
        ({"ModifyVolume": 1}, "Grow the data volume (ModifyVolume)", "fails", {"headroom_mib": 1100}),
    ],
    # worker 3
    [
        ({"CreateSecurityGroup": 1}, "Create a temporary security group letting this master in over ssh", "fails"),
        ({"ModifyInstanceAttribute": 1}, "Launch the staging instance", "fails"),
        ({"AttachVolume": 1, "DeleteVolume": 2}, "Create the data volume and attach it to the staging instance", "cleanup"),
        ({"CreateSnapshot": 1, "TerminateInstances": 2}, "Snapshot the data volume", "cleanup"),
    ],
]
WORKERS = len(FAILURES)


def vanish_after_the_copy(lab) -> None:
    """Take the staging host away once the data is on its volume, before the volume is unmounted."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for instance in lab.hosts.running():
            host = lab.hosts.host(instance)
            if host.info and host.run("ls /srv/gbrowse-data/databases/special 2>/dev/null", check=False).stdout.strip():
                host.down()
                return
        time.sleep(0.1)


def check_failure(lab, data: Path, denied: dict, step: str, outcome: str, settings: dict | None = None) -> None:
    before = lab.conf.read_bytes()
    lab.ebs.denied.clear()
    if outcome == "unreachable":  # the staging instance dies mid-run: the run must still clean up
        vanish = threading.Thread(target=vanish_after_the_copy, args=(lab,), daemon=True)
        vanish.start()
        run = lab.sync(databases=str(data))
        vanish.join()
        assert run.returncode != 0, run.output[-3000:]
        # Where it notices depends on when the host goes: the rsync, the unmount (failed, or
        # unreachable: then "Copy the data", as play 3 finds no result of the copy).
        failure = run.result.get("failure") or {}
        assert failure.get("step") in (step, "Copy the data (live pass)", "Unmount the data volume for its snapshot"), (
            failure,
            run.output[-5000:],
        )
        assert lab.conf.read_bytes() == before
        assert not lock_file(lab).exists()
        assert_nothing_left(lab)
        return
    for action, spec in denied.items():
        times, after = spec if isinstance(spec, tuple) else (spec, None)
        lab.ebs.deny(action, times=times, after=after)
    try:
        run = lab.sync(databases=str(data), **(settings or {}))
    finally:
        lab.ebs.clear_denials()
    assert set(lab.ebs.denied) >= set(denied), f"never denied: {set(denied) - set(lab.ebs.denied)}"
    lab.ebs.denied.clear()
    assert run.returncode != 0
    if outcome == "warns":
        assert run.result["status"] == "synced" and run.result["conf_changed"]
        assert any(step in warning for warning in run.result["warnings"]), run.result["warnings"]
        assert conf_snapshots(lab) == run.result["data_snapshots"]
    else:
        assert f'The sync failed at "{step}' in run.output, run.output[-3000:]
        assert run.result["failure"]["step"].startswith(step)
        assert lab.conf.read_bytes() == before
    if outcome in ("cleanup", "warns"):
        assert run.result["cleanup_errors"]
        assert "run the playbook gmod.gbrowse_aws.sync_cleanup" in run.output
        assert lock_file(lab).exists(), "a run that could not clean up must leave its lock"
        assert lab.leftovers(referenced=conf_snapshots(lab))
        # sync_cleanup.yml removes the rest; or the next sync does, before anything else.
        sweeper = lab.sync(playbook="sync_cleanup.yml") if outcome == "cleanup" else lab.sync(databases=str(data))
        assert sweeper.returncode == 0, sweeper.output[-3000:]
        if outcome == "warns":
            assert "was interrupted or could not clean up; what it left in EC2 is removed now" in sweeper.output
    assert not lock_file(lab).exists()
    assert_nothing_left(lab)


class FailureMatrix:
    """The FAILURES cases, run by WORKERS labs (one per region of one moto) in background threads.

    Started with the module (they take longer than everything else together,
    and mostly wait: on EC2 calls, ssh, sleeps), joined by the test.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.outcomes: dict[str, str] = {}
        self.threads = [threading.Thread(target=self._worker, args=(i,), name=f"failures {i}", daemon=True) for i in range(WORKERS)]

    def start(self) -> FailureMatrix:
        self.data = self.workdir / "databases"
        make_tree(self.data, 50, 2000)
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> dict[str, str]:
        for thread in self.threads:
            thread.join()
        return self.outcomes

    def _worker(self, index: int) -> None:
        # Each lab has its own moto process; different regions keep the playbooks' region handling honest.
        regions = ["us-east-2", "eu-west-1", "eu-central-1", "ap-south-1"]
        try:
            with SyncLab(self.workdir / f"lab{index}", balancer_id=f"failures{index}", region=regions[index]) as lab:
                for denied, step, outcome, *settings in FAILURES[index]:
                    name = "+".join(denied) or outcome
                    start = time.monotonic()
                    try:
                        check_failure(lab, self.data, denied, step, outcome, *settings)
                        self.outcomes[name] = f"ok ({time.monotonic() - start:.0f} s)"
                    except Exception as exc:  # reported by the test, all at once
                        self.outcomes[name] = f"FAILED: {type(exc).__name__}: {str(exc)[-1500:]}"
                problems = lab.ebs.errors + lab.hosts.errors
        except Exception as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            self.outcomes[f"lab {index}"] = f"FAILED: {problems}"


@pytest.fixture(scope="module", autouse=True)
def failure_matrix(request, tmp_path_factory):
    wanted = any(item.originalname == "test_a_failure_at_each_aws_step_leaves_the_conf_and_nothing_behind" for item in request.session.items)
    if not wanted or os.geteuid() != 0 or can_host():
        yield None
        return
    matrix = FailureMatrix(tmp_path_factory.mktemp("failures")).start()
    try:
        yield matrix
    finally:
        matrix.join()


def test_a_failure_at_each_aws_step_leaves_the_conf_and_nothing_behind(failure_matrix):
    """Each EC2 step denied in turn (403, as with a missing IAM permission)."""
    if failure_matrix is None:
        pytest.skip(f"cannot host a staging instance here: {can_host()}")
    outcomes = failure_matrix.join()
    report = "\n".join(f"{name}: {result}" for name, result in outcomes.items())
    print("\n" + report)
    assert len([name for name in outcomes if not name.startswith("lab ")]) == sum(map(len, FAILURES)), report
    assert all(result.startswith("ok") for result in outcomes.values()), report
