# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulator: its inputs, its bad-input messages, and its figures on traces small enough to work out by hand."""

from __future__ import annotations

import gzip
import json

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import balancer_main
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import Policy
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import LoadRow
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import (
    InputError,
    Model,
    Trace,
    needed,
    oracle_seconds,
    read_trace,
    simulate,
    true_load,
)

LINE = '192.0.2.{n} - - [02/Nov/2026:10:00:{s:02d} +0000] "GET /cgi-bin/gb2/gbrowse/yeast/ HTTP/1.1" 200 512 "-" "Mozilla/5.0"\n'
COMMON = '192.0.2.9 - frank [02/Nov/2026:11:00:{s:02d} +0100] "GET /x HTTP/1.0" 200 2326\n'
EXACT = Model(boot_min=60, boot_max=60, pending=15, launch_failure=0, never_ready=0, reclaims_per_month=0)
ONE = (LoadRow(1.0, 1, 1),)

CONF = """[LOAD TABLE]
1.0  1 1
[MASTER]
scaling_policy = {policy}
[SLAVE]
image_id = ami-12345678
spot_bid = 0.5
"""


def log(path, lines):
    path.write_text("".join(lines))
    return str(path)


# -- reading --------------------------------------------------------------------


def test_combined_common_gzip_and_globs(tmp_path) -> None:
    log(tmp_path / "access.log", [LINE.format(n=1, s=s) for s in (0, 0, 1, 3)])
    with gzip.open(tmp_path / "access.log.1.gz", "wt") as handle:
        # the same wall-clock second as :00 in another zone: lines are counted in UTC
        handle.write(COMMON.format(s=0))
        handle.write('127.0.0.1 - - [02/Nov/2026:10:00:02 +0000] "GET /server-status?auto HTTP/1.1" 200 700\n')
    trace = read_trace([str(tmp_path / "access.log*")])
    assert trace.counts == [3, 1, 0, 1]  # the status read is the balancer's own: not counted
    assert trace.lines == 6 and trace.bad == 0 and len(trace.sources) == 2


def test_a_few_bad_lines_are_skipped_and_named(tmp_path) -> None:
    lines = [LINE.format(n=1, s=i % 60) for i in range(300)]
    lines[7] = "garbage\n"
    lines[200] = LINE.format(n=1, s=5).replace("Nov", "Foo")
    trace = read_trace([log(tmp_path / "a.log", sorted(lines, key=lambda l: l[:0]))])
    assert trace.bad == 2 and sum(trace.counts) == 298
    assert any(w.endswith("a.log:8: not an access log line (common or combined format)") for w in trace.warnings)
    assert any("a.log:201: unreadable time [02/Foo/2026:10:00:05 +0000]" in w for w in trace.warnings)


@pytest.mark.parametrize(
    "lines, message",
    [
        (["garbage\n"] * 3 + [LINE.format(n=1, s=0)] * 10, "a.log:1: not an access log line"),
        (["garbage\n"] * 3 + [LINE.format(n=1, s=0)] * 10, "a.log: 3 of 13 lines unreadable (more than 1 %)"),
        (["garbage\n", "more garbage\n"], "a.log: no line could be read as a request"),
        ([], "no requests to replay (empty input)"),
        (
            [LINE.format(n=1, s=0).replace("10:00", "12:00"), LINE.format(n=1, s=0)],
            "a.log:2: time 2026-11-02 10:00:00 UTC is before 2026-11-02 12:00:00 UTC of an earlier line",
        ),
        # a stamp seen before, again after a later one: the order is checked line by line,
        # not once per distinct stamp
        (
            [LINE.format(n=1, s=0), LINE.format(n=1, s=0).replace("10:00", "12:00"), LINE.format(n=1, s=0)],
            "a.log:3: time 2026-11-02 10:00:00 UTC is before 2026-11-02 12:00:00 UTC of an earlier line",
        ),
        # 26 characters in brackets that are not a time: the fast reading hands the block over
        (
            [LINE.format(n=1, s=s) for s in range(50)] + [LINE.format(n=1, s=0).replace(":00:00 ", ":0x:00 ")],
            "a.log:51: not an access log line",
        ),
        (
            [LINE.format(n=1, s=s) for s in range(50)] + [LINE.format(n=1, s=61)],
            "a.log:51: unreadable time [02/Nov/2026:10:00:61 +0000]",
        ),
    ],
)
def test_bad_logs_are_refused_with_file_and_line(tmp_path, lines, message) -> None:
    with pytest.raises(InputError) as caught:
        read_trace([log(tmp_path / "a.log", lines)])
    assert message in str(caught.value)


def test_csv_rows_header_and_errors(tmp_path) -> None:
    good = tmp_path / "t.csv"
    good.write_text("time,requests\n100,3\n101,0\n103,2\n")
    assert read_trace([str(good)]).counts == [3, 0, 0, 2]
    iso = tmp_path / "iso.csv"
    iso.write_text("2026-11-02T10:00:00Z,1\n2026-11-02T10:00:02+00:00,4\n")
    assert read_trace([str(iso)]).counts == [1, 0, 4]
    backwards = tmp_path / "b.csv"
    backwards.write_text("time,requests\n100,3\n99,1\n")
    with pytest.raises(InputError, match=r"b\.csv:3: time 99 is not after the previous row's"):
        read_trace([str(backwards)])
    with pytest.raises(InputError, match=r"nothing\.csv: No such file or directory"):
        read_trace([str(tmp_path / "nothing.csv")])


# -- figures by hand ------------------------------------------------------------


def test_true_load_is_the_trailing_minute() -> None:
    assert true_load([60] + [0] * 60) == [1.0] * 60 + [0.0]
    assert needed([0.5, 1.0, 3.0], ONE) == [0, 1, 1]


def test_oracle_of_one_hour_at_constant_load() -> None:
    # 1 req/s for an hour, a table wanting 1 slave from 1 req/s: the trailing
    # minute holds 60 requests from second 59 to second 3599: 3541 s. The
    # oracle's slave is billed those plus one boot after pending (150 - 15 s).
    need = needed(true_load([1] * 3600 + [0] * 600), ONE)
    assert need[58:60] == [0, 1] and need[3599:3601] == [1, 0] and sum(need) == 3541
    assert oracle_seconds(need, overhead=135) == 3541 + 135
    trace = Trace(0, [1] * 3600 + [0] * 600)
    # the simulator's oracle with a 60 s boot, 15 s of it pending
    assert simulate(trace, ONE, Policy(), model=EXACT).oracle_slave_hours == pytest.approx((3541 + 45) / 3600)


@pytest.mark.parametrize(
    "need, overhead, billed",
    [
        ([1] * 100 + [0] * 100 + [1] * 100, 135, 300 + 135),  # a 100 s gap: kept through it
        ([1] * 100 + [0] * 200 + [1] * 100, 135, 2 * (100 + 135)),  # a 200 s gap: two launches
        ([2] * 10 + [1] * 100, 5, (110 + 5) + 60),  # the second slave for 10 s: billed the 60 s minimum
        ([0] * 50, 135, 0),
    ],
)
def test_oracle_keeps_a_slave_when_that_is_cheaper(need, overhead, billed) -> None:
    assert oracle_seconds(need, overhead) == billed


def test_literal_oracle_launches_again_after_every_gap() -> None:
    assert oracle_seconds([1] * 100 + [0] * 100 + [1] * 100, 135, merge=False) == 2 * (100 + 135)


def test_a_step_up_is_under_provisioned_for_detection_plus_boot() -> None:
    # 2 req/s from second 600 to 2400 of 3000. The poll at 630 sees it and
    # launches; the slave answers at 690 and joins at that poll. The table
    # wants 1 slave from second 629 (60 requests in the trailing minute).
    trace = Trace(0, [0] * 600 + [2] * 1800 + [0] * 600)
    result = simulate(trace, ONE, Policy("immediate"), model=EXACT, price=0.5)
    assert result.under_provisioned == pytest.approx(61 / 3000)  # seconds 629..689
    assert result.slave_hours == pytest.approx((2430 - 645) / 3600)  # billed from the end of pending
    assert result.dollars == pytest.approx(result.slave_hours * 0.5)
    assert result.launches_per_day == pytest.approx(86400 / 3000)
    assert result.flaps_per_day == 0


def test_drain_time_is_billed_and_the_draining_slave_does_not_serve() -> None:
    """The daemon's decide() runs in the replay: a scaled-in slave drains drain_time s, billed, out of the farm."""
    trace = Trace(0, [0] * 600 + [2] * 1800 + [0] * 600)
    plain = simulate(trace, ONE, Policy("immediate"), model=EXACT)
    drained = simulate(trace, ONE, Policy("immediate"), model=EXACT, drain_time=60)
    assert drained.slave_hours == pytest.approx(plain.slave_hours + 60 / 3600)
    assert drained.under_provisioned == plain.under_provisioned


def test_a_slave_that_answers_between_polls_joins_within_seconds() -> None:
    # 10-minute polls: launched at 600 (the poll that first sees load), answering at 660.
    trace = Trace(0, [2] * 3000)
    now = simulate(trace, ONE, Policy("immediate"), model=EXACT, poll_interval=600)
    late = simulate(trace, ONE, Policy("immediate"), model=EXACT, poll_interval=600, join_between_polls=False)
    assert late.under_provisioned - now.under_provisioned == pytest.approx((1200 - 660) / 3000, abs=5 / 3000)


def test_a_slave_removed_within_ten_minutes_is_a_flap() -> None:
    trace = Trace(0, [0] * 600 + [2] * 240 + [0] * 2160)
    result = simulate(trace, ONE, Policy("immediate"), model=EXACT)
    assert result.flaps_per_day == pytest.approx(86400 / 3000)
    held = simulate(trace, ONE, Policy(), model=EXACT)  # adaptive keeps it 10 minutes
    assert held.flaps_per_day == 0


def test_reclaims_and_never_ready_slaves_are_not_flaps() -> None:
    class Fragile(Model):
        @property
        def reclaim_rate(self) -> float:
            return 1 / 3600  # one reclaim an hour per slave

    trace = Trace(0, [2] * 6 * 3600)
    model = Fragile(boot_min=60, boot_max=60, never_ready=0.5, seed=3)
    result = simulate(trace, ONE, Policy("immediate"), model=model)
    assert result.reclaims > 0 and result.flaps_per_day == 0 and result.launches_per_day > 4


def test_busy_workers_cannot_be_simulated() -> None:
    with pytest.raises(InputError, match="busy_workers cannot be simulated"):
        simulate(Trace(0, [1]), ONE, Policy(), signal="busy_workers")


# -- the command ----------------------------------------------------------------


def test_simulate_command_compares_confs(tmp_path, capsys) -> None:
    for policy in ("adaptive", "immediate"):
        (tmp_path / f"{policy}.conf").write_text(CONF.format(policy=policy))
    trace = tmp_path / "t.csv"
    trace.write_text("time,requests\n" + "".join(f"{i},{2 if 600 <= i < 2400 else 0}\n" for i in range(3000)))
    argv = [
        "simulate",
        str(trace),
        "--conf",
        str(tmp_path / "adaptive.conf"),
        "--conf",
        str(tmp_path / "immediate.conf"),
    ]
    assert balancer_main(argv + ["--json", "--launch-failure", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["results"]] == ["adaptive.conf", "immediate.conf"]
    assert out["requests"] == 3600 and out["results"][0]["dollars"] == pytest.approx(
        out["results"][0]["slave_hours"] * 0.5
    )
    assert balancer_main(argv) == 0
    assert "under-provisioned" in capsys.readouterr().out


def test_simulate_command_replays_the_adaptive_keys_of_each_conf(tmp_path, capsys) -> None:
    """scale_in_window reaches the replay: a 30-minute window keeps the slave about 30 minutes
    after the load stops, a zero window lets it go within a poll or two."""
    confs = []
    for window in (0, 30):
        confs += ["--conf", str(tmp_path / f"w{window}.conf")]
        (tmp_path / f"w{window}.conf").write_text(
            CONF.format(policy="adaptive").replace("[MASTER]\n", f"[MASTER]\nscale_in_window = {window}\n")
        )
    trace = tmp_path / "t.csv"
    trace.write_text("time,requests\n" + "".join(f"{i},{2 if 600 <= i < 2400 else 0}\n" for i in range(6000)))
    assert balancer_main(["simulate", str(trace), *confs, "--json", "--launch-failure", "0", "--never-ready", "0"]) == 0
    short, long = json.loads(capsys.readouterr().out)["results"]
    assert long["slave_hours"] - short["slave_hours"] == pytest.approx(0.5, abs=0.05)
    assert short["under_provisioned"] == long["under_provisioned"]  # the load never came back


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--boot", "240-60"], "--boot must be 0 < MIN <= MAX <= 3600"),
        (["--launch-failure", "1.5"], "--launch-failure must be in [0, 1)"),
        (["--plot", "out.pdf"], "--plot out.pdf: the file name must end in .png or .svg"),
    ],
)
def test_simulate_command_bad_options(tmp_path, capsys, extra, message) -> None:
    (tmp_path / "a.conf").write_text(CONF.format(policy="adaptive"))
    (tmp_path / "t.csv").write_text("0,1\n")
    assert balancer_main(["simulate", str(tmp_path / "t.csv"), "--conf", str(tmp_path / "a.conf")] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_simulate_command_bad_conf_names_the_line(tmp_path, capsys) -> None:
    (tmp_path / "a.conf").write_text(CONF.format(policy="fastest"))
    (tmp_path / "t.csv").write_text("0,1\n")
    assert balancer_main(["simulate", str(tmp_path / "t.csv"), "--conf", str(tmp_path / "a.conf")]) == 2
    assert "a.conf:4" in capsys.readouterr().err


def test_simulate_command_plots(tmp_path) -> None:
    # matplotlib is a development requirement (requirements/dev.txt): no skip
    (tmp_path / "a.conf").write_text(CONF.format(policy="adaptive"))
    (tmp_path / "t.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(1200)))
    argv = ["simulate", str(tmp_path / "t.csv"), "--conf", str(tmp_path / "a.conf"), "--plot", str(tmp_path / "p.svg")]
    assert balancer_main(argv) == 0
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
