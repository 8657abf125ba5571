# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The render farm end to end with real GBrowse 2.56: Debian's master, real gbrowse_slave processes.

The master is Debian's GBrowse in a private Apache (CGI gbrowse_img), the
balancer is the real command against a moto server over HTTP, and every
instance it launches gets a real gbrowse_slave at its private IP, in a
network namespace of its own (tests/support/gbrowse.py).

gbrowse_img costs seconds of CPU per image here, so images alone would make a
load of well under 1 req/s: steady requests for a small file stand in for the
rest of a busy site's traffic and decide when the balancer scales out and in,
while the images show where GBrowse renders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.tests.support import gbrowse
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import FixedRateLoad
from ansible_collections.gmod.gbrowse_aws.tests.support.staging import StagingSubnet

pytestmark = pytest.mark.skipif(gbrowse.unavailable() is not None, reason=str(gbrowse.unavailable()))

BID = "gbrowse-e2e"
# Static requests at 8/s want two slaves; images and status fetches alone stay under 4/s.
TABLE = ((0.0, 0, 0), (4.0, 2, 2))


def wait_for(what: str, predicate: t.Callable[[], t.Any], timeout: float, *, detail: t.Callable[[], str] = str) -> t.Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s\n{detail()}")
        time.sleep(0.2)


@pytest.fixture
def subnet() -> t.Iterator[StagingSubnet]:
    with StagingSubnet() as net:
        yield net


def test_unpatched_master_cannot_use_a_slave_and_the_fix_makes_it_render(subnet) -> None:
    """GBrowse 2.56 as shipped: HTTP 500 when a slave renders; with the role's fix the slave's image comes back."""
    # The slave writes into the master's tmp_base (GBrowse sends it): it stops before the masters go.
    with gbrowse.GBrowseMaster(renderfarm_fix=False) as plain, gbrowse.GBrowseMaster(renderfarm_fix=True) as fixed:
        slave = gbrowse.SlaveHost(f"{subnet.network.network_address + 7}", subnet)
        try:
            slave.start()
            slave.wait_answering()
            farm = f"[GENERAL]\nrenderfarm = 1\nremote renderer = http://{slave.address}:{gbrowse.PORT}\n"
            for master, region in ((plain, "chrI:3001..23000"), (fixed, "chrI:3101..23100")):
                before = slave.rendered()
                master.renderfarm_conf.write_text(farm)
                status, body = master.get_image(region)
                log = master.error_log(200)
                if master is fixed:
                    assert (status, body[:4]) == (200, b"\x89PNG"), log
                    assert slave.rendered() == before + 1, slave.log.read_text()[-3000:]
                else:
                    assert status == 500, log
                    assert 'Can\'t locate object method "png"' in log
                    assert slave.rendered() > before  # the slave did its part; the master failed
        finally:
            slave.stop()
        assert not slave.pids()


def test_balancer_farm_with_real_gbrowse_renders_on_slaves_then_locally(tmp_path) -> None:
    started = time.monotonic()
    with gbrowse.FarmLab(tmp_path, table=TABLE, balancer_id=BID) as lab:
        master, slaves, farm = lab.master, lab.slaves, lab.farm
        with gbrowse.ImageLoad(master, threads=2) as images, lab.balancer() as bal:
            bal.wait_ready()

            def detail() -> str:
                return f"farm {farm()}; slaves {slaves.rendered()} {slaves.errors}\n{bal.log_tail(3000)}\n{master.error_log(20)}"

            # Scale out: the balancer launches two, a gbrowse_slave answers at each, both join the farm.
            with FixedRateLoad(master.apache.small_file_url, rate=8, threads=2):  # type: ignore[union-attr]
                registered = wait_for("two slaves in renderfarm.conf", lambda: len(farm()) == 2 and farm(), 60, detail=detail)
                joined = time.monotonic()
                wait_for("images rendered by each slave", lambda: all(slaves.rendered(registered).values()), 90, detail=detail)
                wait_for("two images asked with the farm in use", lambda: len(images.asked_since(joined)) >= 2, 90, detail=detail)
                on_farm = images.asked_since(joined)
            # Scale in: the static load stops, the farm empties, the instances go.
            wait_for("an empty farm", lambda: farm() == (), 60, detail=detail)
            emptied = time.monotonic()
            wait_for("every slave stopped", lambda: not slaves.addresses(), lab.drain_time + 60, detail=detail)
            stopped = time.monotonic()
            by_slaves = slaves.rendered()
            wait_for("two images asked after the scale-in", lambda: len(images.asked_since(stopped)) >= 2, 90, detail=detail)
            after = images.asked_since(stopped)
            assert bal.terminate() == 0, bal.log_tail()
            assert lab.running() == []
            images.stop()
        answers = images.answers
        final = slaves.rendered()
        errors = list(slaves.errors)
        elapsed = time.monotonic() - started
        print(
            f"\nreal GBrowse farm: {elapsed:.0f} s, {len(answers)} images, {sum(final.values())} rendered by "
            f"slaves {final}, {len(after)} asked after the scale-in, statuses {sorted({a.status for a in answers})}"
        )

    expected = tuple(sorted(f"http://{address}:{gbrowse.PORT}" for address in final))
    assert registered == expected  # the slaves that rendered are exactly the ones the balancer registered
    assert all(count > 0 for count in by_slaves.values()), by_slaves
    timeline = f"started {started:.1f}, farm in use {joined:.1f}, farm empty {emptied:.1f}\n" + "\n".join(
        f"  asked {a.asked:.1f} answered {a.at:.1f} {a.status} {a.name}" for a in answers
    )
    # A slave that leaves the farm is terminated drain_time (FarmLab: 60 s) later, so a
    # CGI request that read renderfarm.conf just before the scale-in still gets its image.
    failed = [a for a in answers if a.status != 200 or not a.png]
    assert failed == [], timeline
    assert on_farm and after
    assert final == by_slaves  # after the scale-in, GBrowse rendered locally
    assert not errors


ROLE_PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: gmod.gbrowse_aws.balancer
        tasks_from: renderfarm_fix
    # Never reload this machine's Apache: end before the handlers (and if they
    # ever ran, the service name below makes them fail instead).
    - ansible.builtin.meta: end_play
"""


def test_role_installs_the_render_farm_fix_where_gbrowse_has_the_broken_code(tmp_path) -> None:
    """Check mode, apply, idempotent apply, then off: the role's tasks against this machine's real GBrowse 2.56."""
    (tmp_path / "play.yml").write_text(ROLE_PLAY)
    perl_dir, conf, link = tmp_path / "perl", tmp_path / "available" / "fix.conf", tmp_path / "enabled" / "fix.conf"
    for directory in (conf.parent, link.parent):
        directory.mkdir()
    module = perl_dir / "GBrowseAWS" / "RenderFarmFix.pm"
    settings = {
        "balancer_gbrowse_fix_perl_dir": str(perl_dir),
        "balancer_apache_renderfarm_fix_conf": str(conf),
        "balancer_apache_renderfarm_fix_conf_link": str(link),
        "balancer_apache_service": "gbrowse-e2e-no-such-service",
        "ansible_python_interpreter": sys.executable,
    }
    (tmp_path / "vars.json").write_text(json.dumps(settings))

    def play(*args: str) -> tuple[int, str]:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(tmp_path / "play.yml"),
             "-e", f"@{tmp_path / 'vars.json'}", "--diff", *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "RUNNING HANDLER" not in result.stdout
        changed = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", result.stdout)
        assert changed, result.stdout[-2000:]
        return int(changed.group(1)), result.stdout

    changed, out = play("--check")
    assert changed == 4 and "+    SetEnv PERL5OPT \"-MGBrowseAWS::RenderFarmFix\"" in out  # the diff shows what it would do
    assert not module.exists() and not conf.exists() and not link.exists()

    changed, out = play()
    assert changed == 4  # directory, module, Apache snippet, link
    assert module.read_bytes() == gbrowse.FIX_MODULE.read_bytes()
    assert conf.read_text().split("\n", 1)[1] == gbrowse.render_fix_conf(perl_dir).split("\n", 1)[1]  # past ansible_managed
    assert link.is_symlink() and link.resolve() == conf

    assert play()[0] == 0  # idempotent

    changed, out = play("-e", "balancer_fix_gbrowse_renderfarm=false")
    assert changed == 1 and not module.exists() and not conf.exists() and not link.exists()
