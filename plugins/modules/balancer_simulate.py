#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: balancer_simulate
short_description: What a balancer conf would have cost on past traffic
version_added: 0.1.0
description:
  - Replays Apache access logs or a CSV of requests per second through the balancer's own decision code (the
    controller and plan the C(gbrowse_aws_balancer) daemon runs) against a model of EC2, once per conf, and returns
    what each conf would have cost and how often it would have been short of slaves. The same replay as
    C(gbrowse_aws_balancer simulate --json); docs/simulate.md describes the model and the figures.
  - Reads the inputs and the confs and nothing else (no Apache, no AWS, no credentials), and changes nothing.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
  - gmod.gbrowse_aws.attributes.INFO_MODULE
options:
  inputs:
    description:
      - Access logs in Apache's common or combined format (plain or gzip, told by content) or CSV files of
        C(time,requests) rows, by name or glob (V(/var/log/apache2/access.log*)), on the host the module runs on.
      - Unreadable lines are skipped, counted in RV(skipped_lines) and the first few named C(FILE:LINE) in a warning;
        above 1 % of a file's lines, or a log not in time order, the module fails naming C(FILE:LINE).
    type: list
    elements: str
    required: true
  conf:
    description:
      - The C(aws_balancer.conf) files to replay, one result each, in this order. Each conf's load table,
        C(poll_interval), C(load_signal), C(scaling_policy), C(scale_in_delay), C(scale_in_window), C(load_margin),
        C(max_launch_per_poll), C(ready_timeout), C(drain_time) and C(spot_bid) are replayed.
      - Errors in a file fail the module with the balancer's C(FILE:LINE) errors.
    type: list
    elements: path
    required: true
  price:
    description:
      - Dollars per slave-hour for every conf; default each conf's C(spot_bid).
      - A finite number, 0 or more.
    type: float
  seed:
    description: Random seed of the EC2 model (boot times, failed launches, reclaims).
    type: int
    default: 1
  boot_min:
    description: Fewest seconds from a launch call until the slave answers (0 < O(boot_min) <= O(boot_max) <= 3600).
    type: float
    default: 60
  boot_max:
    description: Most seconds from a launch call until the slave answers; boot times are uniform in between.
    type: float
    default: 240
  pending:
    description: Seconds of EC2 pending (not billed) at the start of a boot, from 0 to O(boot_min).
    type: float
    default: 15
  launch_failure:
    description: Chance that a launch call gets no capacity (retried at the next poll), from 0 to below 1.
    type: float
    default: 0.01
  never_ready:
    description: Chance that a slave never answers (replaced after C(ready_timeout)), from 0 to below 1.
    type: float
    default: 0.01
  reclaims:
    description: Chance that a slave running for a month is reclaimed by EC2, from 0 to below 1.
    type: float
    default: 0.05
notes:
  - A week of logs takes a few seconds of CPU to replay per conf (about 3 s per million log lines to read them).
  - The plot of C(gbrowse_aws_balancer simulate --plot) is not offered here, so that the module writes nothing.
seealso:
  - module: gmod.gbrowse_aws.balancer_conf
  - module: gmod.gbrowse_aws.load_decision
"""

EXAMPLES = r"""
- name: Would scale_in_delay = 10 be cheaper on last week's traffic?
  gmod.gbrowse_aws.balancer_simulate:
    inputs:
      - /var/log/apache2/access.log*
    conf:
      - /etc/gbrowse2/aws_balancer.conf
      - /tmp/candidate.conf
  register: replay

- name: Show the dollars and the time short of slaves of each conf
  ansible.builtin.debug:
    msg: "{{ item.name }}: ${{ item.dollars | round(2) }}, {{ (item.under_provisioned * 100) | round(2) }} % short"
  loop: "{{ replay.results }}"
  loop_control:
    label: "{{ item.name }}"

- name: The same with slower slaves and another seed, at a fixed price
  gmod.gbrowse_aws.balancer_simulate:
    inputs: [/srv/traces/week.csv]
    conf: [/etc/gbrowse2/aws_balancer.conf]
    boot_min: 120
    boot_max: 300
    seed: 2
    price: 0.05
"""

RETURN = r"""
inputs:
  description: The files read, globs expanded, each once.
  returned: always
  type: list
  elements: str
  sample: [/var/log/apache2/access.log.1, /var/log/apache2/access.log]
start:
  description: The first second replayed, in seconds since the epoch (UTC).
  returned: always
  type: int
  sample: 1793577603
seconds:
  description: Seconds replayed.
  returned: always
  type: int
  sample: 604797
lines:
  description: Lines read (log lines or CSV rows).
  returned: always
  type: int
  sample: 1431550
skipped_lines:
  description: Unreadable lines skipped.
  returned: always
  type: int
  sample: 0
requests:
  description: Requests replayed (the balancer's own C(/server-status) reads are not load).
  returned: always
  type: int
  sample: 1431550
model:
  description: The EC2 model the replay ran against.
  returned: always
  type: dict
  contains:
    boot_min:
      description: Fewest seconds from launch to answering.
      type: float
      sample: 60.0
    boot_max:
      description: Most seconds from launch to answering.
      type: float
      sample: 240.0
    pending:
      description: Seconds of EC2 pending, not billed.
      type: float
      sample: 15.0
    launch_failure:
      description: Chance a launch call fails.
      type: float
      sample: 0.01
    never_ready:
      description: Chance a slave never answers.
      type: float
      sample: 0.01
    reclaims_per_month:
      description: Chance a slave is reclaimed within a month.
      type: float
      sample: 0.05
    seed:
      description: The random seed.
      type: int
      sample: 1
results:
  description: One entry per O(conf), in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The conf's file name (its path when two confs share a name).
      type: str
      sample: aws_balancer.conf
    seconds:
      description: Seconds replayed.
      type: int
      sample: 604797
    slave_hours:
      description: Slave-hours billed (per second from the end of pending, at least 60 s a slave).
      type: float
      sample: 447.9
    dollars:
      description: O(price) (or the conf's C(spot_bid)) times RV(results[].slave_hours).
      type: float
      sample: 44.79
    under_provisioned:
      description: The fraction of seconds with fewer ready slaves than the table's min for the true load (requests
        served over the trailing 60 s).
      type: float
      sample: 0.0064
    flaps_per_day:
      description: Slaves terminated by the balancer less than 10 minutes after their launch, a day.
      type: float
      sample: 0.0
    launches_per_day:
      description: Slaves launched, a day.
      type: float
      sample: 23.6
    oracle_slave_hours:
      description: Slave-hours of the oracle, the table's min for the true load ready at every moment.
      type: float
      sample: 312.9
    vs_oracle:
      description: RV(results[].slave_hours) over RV(results[].oracle_slave_hours); V(null) when the oracle needs none.
      type: float
      sample: 1.4314
    reclaims:
      description: Slaves reclaimed by the model.
      type: int
      sample: 0
    launch_failures:
      description: Launch calls that got no capacity.
      type: int
      sample: 2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import (
    InputError,
    Model,
    model_problems,
    replay,
    summary,
)

# Module option -> the Model field it sets (same names, but for reclaims).
_MODEL_OPTIONS = {
    "boot_min": "boot_min",
    "boot_max": "boot_max",
    "pending": "pending",
    "launch_failure": "launch_failure",
    "never_ready": "never_ready",
    "reclaims": "reclaims_per_month",
    "seed": "seed",
}
# A bound of the model -> the options it is about, for the message.
_PROBLEM_OPTIONS = {"boot": "boot_min, boot_max"}

ARGUMENT_SPEC = dict(
    inputs=dict(type="list", elements="str", required=True),
    conf=dict(type="list", elements="path", required=True),
    price=dict(type="float"),
    seed=dict(type="int", default=1),
    boot_min=dict(type="float", default=60.0),
    boot_max=dict(type="float", default=240.0),
    pending=dict(type="float", default=15.0),
    launch_failure=dict(type="float", default=0.01),
    never_ready=dict(type="float", default=0.01),
    reclaims=dict(type="float", default=0.05),
)


def checked_model(params: dict) -> tuple[Model | None, list[str]]:
    """The EC2 model from the options, or None and one message per option out of bounds (the command's bounds)."""
    model = Model(**{field: params[option] for option, field in _MODEL_OPTIONS.items()})
    errors = [
        f"{_PROBLEM_OPTIONS.get(name, name)}: must be {what}" for name, what in model_problems(model, params["price"])
    ]
    if not params["inputs"]:
        errors.append("inputs: at least one log or CSV file")
    if not params["conf"]:
        errors.append("conf: at least one aws_balancer.conf")
    return (None if errors else model), errors


def run(params: dict) -> tuple[dict, list[str]]:
    """The figures (as ``--json``) and the warnings about skipped lines; InputError as the command would print it."""
    model, errors = checked_model(params)
    if model is None:
        raise InputError("; ".join(errors))
    trace, results = replay(params["inputs"], params["conf"], model, params["price"])
    return summary(trace, model, results), list(trace.warnings)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    model, errors = checked_model(module.params)
    if model is None:
        module.fail_json(msg="; ".join(errors), errors=errors)
    try:
        figures, warnings = run(module.params)
    except InputError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **figures)


if __name__ == "__main__":
    main()
