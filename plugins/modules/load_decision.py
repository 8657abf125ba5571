#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: load_decision
short_description: What the balancer would decide for a load
version_added: 0.1.0
description:
  - Looks a load (requests per second) up in the balancer's load table and returns the matching row and the wanted
    number of slaves, V(min) to V(max), exactly as the C(gbrowse_aws_balancer) daemon decides.
  - Given the current fleet (O(fleet) or O(counts)), also returns the plan the daemon would carry out this poll
    (how many slaves to launch, which to remove).
  - Pure, it reads the conf file (if given) and nothing else, and changes nothing.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
  - gmod.gbrowse_aws.attributes.INFO_MODULE
options:
  load:
    description:
      - The load in requests per second, for example the RV(gmod.gbrowse_aws.mod_status_info#module:rate) of
        M(gmod.gbrowse_aws.mod_status_info).
      - A finite number, 0 or more; V(nan), V(inf) and negative loads are refused.
    type: float
    required: true
  conf:
    description:
      - The balancer's C(aws_balancer.conf); its C([LOAD TABLE]) is used, and its C(max_launch_per_poll) unless
        O(max_launch) is given.
      - Errors in the file fail the module with the balancer's C(FILE:LINE) errors.
      - Exactly one of O(conf) and O(table) is required.
    type: path
  table:
    description:
      - The load table inline, rows in ascending order of O(table[].threshold), checked as the balancer checks the
        file's (thresholds from 0 to 1e9 requests per second, min and max from 0 to 1000 slaves, at most 100 rows).
    type: list
    elements: dict
    suboptions:
      threshold:
        description: Requests per second from which this row holds.
        type: float
        required: true
      min:
        description: Fewest slaves.
        type: int
        required: true
      max:
        description: Most slaves.
        type: int
        required: true
  fleet:
    description:
      - The current slaves, for the plan. Each is a dictionary with the keys below; other keys are ignored, so the
        RV(gmod.gbrowse_aws.spot_fleet#module:instances) result of M(gmod.gbrowse_aws.spot_fleet) can be passed as
        it is.
      - V(id) (required), the instance id.
      - V(state), V(pending), V(booting), V(ready) (the default) or V(going) as the balancer sees a slave, or an EC2
        instance state; V(running) counts as V(ready) when V(ready) is true, else as V(booting); V(shutting-down),
        V(stopping), V(stopped) and V(terminated) count as V(going).
      - V(ready), whether a V(running) slave answered the readiness check (default false).
      - V(launched), the launch time in seconds since the epoch (default 0); among slaves in one state the newest
        are removed first.
      - At most 3000 slaves. Mutually exclusive with O(counts).
    type: list
    elements: dict
  counts:
    description:
      - The current fleet as numbers of slaves in each state, for the plan. The plan then names slaves
        C(pending-1), C(booting-1), C(ready-1) and so on.
      - Each number is from 0 to 1000.
      - Mutually exclusive with O(fleet).
    type: dict
    suboptions:
      pending:
        description: Slaves asked for and not yet running.
        type: int
        default: 0
      booting:
        description: Slaves running and not yet answering.
        type: int
        default: 0
      ready:
        description: Slaves in the render farm.
        type: int
        default: 0
  max_launch:
    description:
      - The most slaves the plan launches at once (the daemon's C(max_launch_per_poll)), from 0 to 1000. Default from
        O(conf), else no limit.
    type: int
seealso:
  - module: gmod.gbrowse_aws.mod_status_info
  - module: gmod.gbrowse_aws.spot_fleet
"""

EXAMPLES = r"""
- name: Read the current request rate
  gmod.gbrowse_aws.mod_status_info:
    url: http://localhost/server-status
    interval: 5
  register: status

- name: How many slaves does this load want?
  gmod.gbrowse_aws.load_decision:
    load: "{{ status.rate }}"
    conf: /etc/gbrowse2/aws_balancer.conf
  register: decision

- name: Size the fleet by hand into that band
  gmod.gbrowse_aws.spot_fleet:
    conf: /etc/gbrowse2/aws_balancer.conf
    min: "{{ decision.min }}"
    max: "{{ decision.max }}"

- name: What would the daemon do with two ready slaves and one booting?
  gmod.gbrowse_aws.load_decision:
    load: 12.5
    table:
      - {threshold: 0.1, min: 0, max: 1}
      - {threshold: 10, min: 2, max: 4}
    counts: {ready: 2, booting: 1}
  register: decision
"""

RETURN = r"""
row:
  description: The load table row that decided, or V(null) below the first threshold (then no slaves are wanted).
  returned: always
  type: dict
  contains:
    threshold:
      description: Its threshold, requests per second.
      type: float
      sample: 10.0
    min:
      description: Its min.
      type: int
      sample: 2
    max:
      description: Its max.
      type: int
      sample: 4
    line:
      description: Its line in O(conf); V(null) for an inline O(table).
      type: int
      sample: 14
min:
  description: Fewest slaves wanted.
  returned: always
  type: int
  sample: 2
max:
  description: Most slaves wanted.
  returned: always
  type: int
  sample: 4
plan:
  description: What the daemon would do with the given fleet.
  returned: when O(fleet) or O(counts) is given
  type: dict
  contains:
    current:
      description: Slaves that count (all but V(going) ones).
      type: int
      sample: 3
    launch:
      description: How many to launch.
      type: int
      sample: 0
    remove:
      description: Which to remove, in order (pending, then booting, then ready; newest first within each).
      type: list
      elements: str
      sample: []
    idle:
      description: Nothing to do.
      type: bool
      sample: true
"""

import math
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import MAX_SLAVES, ConfError, load_conf, parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import (
    LoadRow,
    Slave,
    SlaveState,
    matching_row,
    plan,
    wanted,
)

# EC2 instance states as the balancer counts them (``running`` depends on readiness).
_EC2_STATES = {"shutting-down": "going", "stopping": "going", "stopped": "going", "terminated": "going"}
_STATES = ("pending", "booting", "ready", "going", "running", "shutting-down", "stopping", "stopped", "terminated")
_TABLE_FIRST_LINE = 3  # in the text checked below


def _checked_table(module, rows):
    """The inline rows checked by the conf reader itself; its errors name the row."""
    text = "[SLAVE]\n[LOAD TABLE]\n" + "".join(f"{row['threshold']!r} {row['min']} {row['max']}\n" for row in rows)
    try:
        conf = parse_conf(text, "table")
    except ConfError as exc:
        errors = []
        for error in exc.errors:
            where, _sep, message = error.partition(": ")
            line = where.rpartition(":")[2]
            row = int(line) - _TABLE_FIRST_LINE + 1 if line.isdigit() else None
            message = re.sub(r"\bon line ([0-9]+)", lambda m: f"in row {int(m.group(1)) - _TABLE_FIRST_LINE + 1}", message)
            errors.append(f"table row {row}: {message}" if row else f"table: {message}")
        module.fail_json(msg="; ".join(errors), errors=errors)
    return [LoadRow(row.threshold, row.min, row.max) for row in conf.table]


def _slaves(module, fleet):
    """The fleet as the plan sees it; each entry checked, other keys ignored."""
    slaves = []
    for index, item in enumerate(fleet):
        where = f"fleet[{index}]"
        instance_id = item.get("id")
        if not isinstance(instance_id, str) or not instance_id:
            module.fail_json(msg=f"{where}.id: required, a non-empty string")
        state = item.get("state", "ready")
        if state not in _STATES:
            module.fail_json(msg=f"{where}.state: {state!r} is not one of {', '.join(_STATES)}")
        try:
            ready = boolean(item.get("ready", False))
        except TypeError:
            module.fail_json(msg=f"{where}.ready: {item.get('ready')!r} is not a boolean")
        try:
            launched = float(item.get("launched") or 0)
        except (TypeError, ValueError):
            launched = math.nan
        if not math.isfinite(launched):
            module.fail_json(msg=f"{where}.launched: {item.get('launched')!r} is not a number")
        state = _EC2_STATES.get(state, state)
        if state == "running":
            state = "ready" if ready else "booting"
        slaves.append(Slave(instance_id, SlaveState(state), launched))
    return slaves


def main():
    module = AnsibleModule(
        argument_spec=dict(
            load=dict(type="float", required=True),
            conf=dict(type="path"),
            table=dict(
                type="list",
                elements="dict",
                options=dict(
                    threshold=dict(type="float", required=True),
                    min=dict(type="int", required=True),
                    max=dict(type="int", required=True),
                ),
            ),
            fleet=dict(type="list", elements="dict"),
            counts=dict(
                type="dict",
                options=dict(
                    pending=dict(type="int", default=0),
                    booting=dict(type="int", default=0),
                    ready=dict(type="int", default=0),
                ),
            ),
            max_launch=dict(type="int"),
        ),
        mutually_exclusive=[("conf", "table"), ("fleet", "counts")],
        required_one_of=[("conf", "table")],
        supports_check_mode=True,
    )
    p = module.params
    # The bounds are the conf's (MAX_SLAVES): a plan never names more slaves than a load table allows.
    if not math.isfinite(p["load"]) or p["load"] < 0:
        module.fail_json(msg=f"load: must be a number of requests per second, 0 or more, not {p['load']!r}")
    if p["max_launch"] is not None and not 0 <= p["max_launch"] <= MAX_SLAVES:
        module.fail_json(msg=f"max_launch: must be from 0 to {MAX_SLAVES}, not {p['max_launch']}")
    for state, number in (p["counts"] or {}).items():
        if not 0 <= number <= MAX_SLAVES:
            module.fail_json(msg=f"counts.{state}: must be from 0 to {MAX_SLAVES} slaves, not {number}")
    if p["fleet"] is not None and len(p["fleet"]) > 3 * MAX_SLAVES:
        module.fail_json(msg=f"fleet: at most {3 * MAX_SLAVES} slaves, not {len(p['fleet'])}")
    max_launch = p["max_launch"]
    if p["conf"] is not None:
        try:
            conf = load_conf(p["conf"])
        except ConfError as exc:
            module.fail_json(msg=str(exc), errors=exc.errors)
        table = list(conf.table)
        if max_launch is None:
            max_launch = conf.master.max_launch_per_poll
    else:
        table = _checked_table(module, p["table"])

    load = p["load"]
    band = wanted(load, table)
    row = matching_row(load, table)
    result = dict(
        changed=False,
        row=None if row is None else dict(threshold=row.threshold, min=row.min, max=row.max, line=row.line or None),
        min=band.min,
        max=band.max,
    )
    if p["fleet"] is not None or p["counts"] is not None:
        if p["fleet"] is not None:
            fleet = _slaves(module, p["fleet"])
        else:
            fleet = [
                Slave(f"{state}-{n}", SlaveState(state))
                for state in ("pending", "booting", "ready")
                for n in range(1, p["counts"][state] + 1)
            ]
        decided = plan(band, fleet, max_launch)
        result["plan"] = dict(
            current=decided.current, launch=decided.launch, remove=list(decided.remove), idle=decided.idle
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
