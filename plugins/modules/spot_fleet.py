#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spot_fleet
short_description: Size the GBrowse render slave fleet on EC2 Spot
version_added: 0.1.0
description:
  - Makes the fleet of render slaves of one balancer (the instances tagged C(gbrowse-aws:balancer-id) with its id)
    hold O(count) slaves, or stay within O(min) and O(max), launching and terminating as the
    C(gbrowse_aws_balancer) daemon does, with the same code; launched slaves get the same launch template, tags,
    security group and data volumes, and are checked for readiness the same way (a render slave answers C(HEAD /)
    on its first port with HTTP 403).
  - Slaves are launched as the conf describes them (O(conf)); slaves to remove are chosen as the daemon chooses them
    (pending before booting before ready, newest first), and slaves that did not become ready within the conf's
    C(ready_timeout) are replaced, as the daemon replaces them.
  - O(state=absent) terminates the whole fleet and deletes the balancer's launch template and security group.
  - The render farm is not changed; pass RV(renderers) to M(gmod.gbrowse_aws.renderfarm).
  - A running balancer daemon with the same id keeps sizing the fleet to its load table; stop it (or change its
    table with M(gmod.gbrowse_aws.balancer_conf)) before sizing the fleet by hand.
  - Its AWS options are those of the amazon.aws modules, so one C(module_defaults) entry for
    C(group/gmod.gbrowse_aws.aws) configures this module and every amazon.aws module at once.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - gmod.gbrowse_aws.requirements.BOTO3
attributes:
  check_mode:
    support: full
    details:
      - Returns the plan (RV(plan)) and the current fleet without launching or terminating anything.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Unless slaves are interrupted, or fail to become ready in time, between two runs.
options:
  conf:
    description:
      - The balancer's C(aws_balancer.conf). Its C([SLAVE]) section describes the slaves to launch (V(image_id),
        V(instance_type), V(spot_bid), V(ports), V(subnet), V(security_group), V(data_snapshots), ...), how to reach
        them (V(address)) and how long they may take to become ready (V(ready_timeout)); its C([MASTER]) section
        gives the V(balancer_id) and V(external_ip).
      - Errors in the file fail the module with the balancer's C(FILE:LINE) errors.
      - Required with O(state=present).
    type: path
  balancer_id:
    description:
      - Which balancer's fleet. Default the conf's V(balancer_id), else the id the daemon derives from this host's
        name and the conf's path (so on the master the module and the daemon agree).
      - One of O(balancer_id) and O(conf) is required.
    type: str
  count:
    description:
      - Exactly this many slaves. Mutually exclusive with O(min) and O(max).
      - With O(state=present), O(count) or O(min) and O(max) are required.
    type: int
  min:
    description: At least this many slaves (with O(max)).
    type: int
  max:
    description: At most this many slaves (with O(min)).
    type: int
  state:
    description:
      - V(present) sizes the fleet; V(absent) removes the fleet, its launch template and its security group.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - With O(state=present), wait until every slave of the fleet is ready (and the removed ones are gone).
      - With O(state=absent), wait until every slave is terminated, so that the security group can be deleted.
    type: bool
    default: false
  wait_timeout:
    description: How many seconds to wait, at most.
    type: int
    default: 600
  key_name:
    description:
      - An EC2 key pair for ssh into new slaves, as the daemon's C(--ssh_key) (the security group then also opens
        port 22 to the master).
    type: str
  instance_metadata:
    description:
      - Ask the EC2 instance metadata service where the master is (its image, subnet, VPC and security group are
        the default for the slaves), as the daemon does. Set V(false) when the module does not run on the master
        or the master is not on EC2.
      - The service is asked only when it is enabled (environment variable E(AWS_EC2_METADATA_DISABLED) not
        V(true)), with one-second timeouts.
    type: bool
    default: true
notes:
  - Launches are one EC2 Fleet request of type C(instant) for Spot capacity at most the conf's V(spot_bid); when no
    slave could be launched (no capacity at that price, quota) or only some, the module fails with EC2's errors.
  - The daemon's C(max_launch_per_poll) does not apply; all missing slaves are launched at once.
seealso:
  - module: gmod.gbrowse_aws.load_decision
  - module: gmod.gbrowse_aws.renderfarm
  - module: amazon.aws.ec2_instance_info
"""

EXAMPLES = r"""
- name: Four slaves for the workshop, ready to serve
  gmod.gbrowse_aws.spot_fleet:
    conf: /etc/gbrowse2/aws_balancer.conf
    count: 4
    wait: true
  register: fleet

- name: Give them to GBrowse
  gmod.gbrowse_aws.renderfarm:
    path: /etc/gbrowse2/renderfarm.conf
    renderers: "{{ fleet.renderers }}"
    state: exact
  notify: Reload Apache

- name: One set of AWS options for this collection and amazon.aws
  module_defaults:
    group/gmod.gbrowse_aws.aws:
      region: us-west-2
      profile: gbrowse
  block:
    - name: What would sizing to 1-3 slaves do?
      gmod.gbrowse_aws.spot_fleet:
        conf: /etc/gbrowse2/aws_balancer.conf
        min: 1
        max: 3
      check_mode: true
      register: plan

    - name: The slaves as EC2 sees them
      amazon.aws.ec2_instance_info:
        instance_ids: "{{ plan.instances | map(attribute='id') }}"

- name: Remove the fleet, its launch template and security group
  gmod.gbrowse_aws.spot_fleet:
    balancer_id: gbrowse-1a2b3c4d
    state: absent
    wait: true
"""

RETURN = r"""
balancer_id:
  description: The balancer whose fleet this is.
  returned: always
  type: str
  sample: gbrowse-1a2b3c4d
instances:
  description:
    - The slaves of the fleet afterwards (in check mode, before), oldest first; terminated ones are not listed.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The instance id.
      type: str
      sample: i-0123456789abcdef0
    state:
      description: The EC2 instance state.
      type: str
      sample: running
    slave_state:
      description: As the balancer sees it, V(pending), V(booting) (running, not yet ready), V(ready) or V(going).
      type: str
      sample: ready
    ready:
      description: Whether it answered the readiness check.
      type: bool
      sample: true
    private_ip:
      description: Its private address.
      type: str
      sample: 10.0.1.17
    public_ip:
      description: Its public address, if any.
      type: str
      sample: null
    address:
      description: The address the master reaches it on (the conf's V(address)).
      type: str
      sample: 10.0.1.17
    instance_type:
      description: Its instance type.
      type: str
      sample: m5.large
    generation:
      description:
        - The data generation it was launched with (its C(gbrowse-aws:data-generation) tag, a digest of the conf's
          C(image_id) and C(data_snapshots)); V(null) when untagged. The balancer daemon replaces slaves whose
          generation is not the conf's; this module does not.
      type: str
      sample: 71c0de5a2b44
    launched:
      description: Its launch time, seconds since the epoch.
      type: float
      sample: 1795600000.0
renderers:
  description: The render farm URLs of the ready slaves (every port of each), for M(gmod.gbrowse_aws.renderfarm).
  returned: always
  type: list
  elements: str
  sample: [http://10.0.1.17:8101]
plan:
  description: What the module did (in check mode, would do).
  returned: always
  type: dict
  contains:
    min:
      description: Fewest slaves wanted.
      type: int
      sample: 4
    max:
      description: Most slaves wanted.
      type: int
      sample: 4
    current:
      description: Slaves that counted before (all but those going away).
      type: int
      sample: 2
    launch:
      description: How many to launch.
      type: int
      sample: 2
    remove:
      description: Slaves to terminate to get down to the wanted number.
      type: list
      elements: str
      sample: []
    replace_unready:
      description: Slaves to terminate (and replace) because they did not become ready within C(ready_timeout).
      type: list
      elements: str
      sample: []
launched:
  description: The ids of the slaves launched.
  returned: always
  type: list
  elements: str
  sample: [i-0123456789abcdef1]
terminated:
  description: The ids of the slaves asked to terminate (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: []
"""

import dataclasses
import socket
import time

try:
    from botocore.config import Config
except ImportError:
    pass  # AnsibleAWSModule reports missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, load_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import Band, alive, decide
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import (
    DEFAULT_MAX_ATTEMPTS,
    EC2,
    USER_AGENT,
    EC2Error,
    aws_session,
    resolved_region,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import (
    FleetView,
    Master,
    build_launch_spec,
    described,
    discover_master,
    settled,
    teardown,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metadata import InstanceMetadata

_POLL = 2.0  # seconds between readiness rounds while waiting


def present(module, ec2, conf, master, band):
    view = FleetView(ec2, conf, master)
    fleet = view.observe(time.time())
    # One run has no drain memory: a scaled-in slave goes at once (drain_time is the daemon's).
    # Replacing slaves for new data takes many polls: the daemon's too (a run only keeps the count).
    settings = dataclasses.replace(conf.poll_settings(), max_launch=None, drain_time=0, generation=None)
    actions = decide(fleet, band, settings, time.time())
    result = dict(
        changed=bool(actions.launch or actions.terminate),
        plan=dict(
            min=band.min,
            max=band.max,
            current=actions.plan.current,
            launch=actions.launch,
            remove=list(actions.plan.remove),
            replace_unready=list(actions.expired),
        ),
        launched=[],
        terminated=list(actions.terminate),
    )
    if module.check_mode:
        return fleet, result
    if actions.terminate:
        result["terminated"] = ec2.terminate(actions.terminate)
        view.terminated_now(result["terminated"], time.time())
    if actions.launch:
        launch = ec2.launch(actions.launch, build_launch_spec(conf, ec2, master, module.params["key_name"]))
        result["launched"] = list(launch.instance_ids)
        view.launched_now(launch.instance_ids, time.time())
        if launch.errors:
            errors = "; ".join(f"{code}: {message}" for code, message in launch.errors)
            module.fail_json(
                msg=f"Launched only {len(launch.instance_ids)} of {actions.launch} slave(s): {errors}",
                instances=described(view.observe(time.time())),
                **result,
            )
    if result["changed"]:
        fleet = view.observe(time.time())
    if module.params["wait"]:
        deadline = time.monotonic() + module.params["wait_timeout"]
        while not settled(fleet, result["launched"], actions.terminate):
            if time.monotonic() > deadline:
                module.fail_json(
                    msg=f"wait_timeout: {len(fleet.ready)} of {alive(fleet.slaves)} slave(s) ready "
                    f"after {module.params['wait_timeout']} s",
                    instances=described(fleet),
                    renderers=list(fleet.renderers(conf.slave.ports)),
                    **result,
                )
            time.sleep(_POLL)
            fleet = view.observe(time.time())
    return fleet, result


def absent(module, ec2):
    view = FleetView(ec2, None, Master())
    fleet = view.observe(time.time())
    leftovers = ec2.owns_template_or_group()
    alive_ids = [i.id for i in fleet.instances if i.state != "shutting-down"]
    result = dict(changed=bool(fleet.instances or leftovers), launched=[], terminated=alive_ids)
    if module.check_mode or not result["changed"]:
        return fleet, result
    left = teardown(ec2, module.params["wait_timeout"] if module.params["wait"] else 0)
    fleet = view.observe(time.time())
    if module.params["wait"] and left:
        module.fail_json(
            msg=f"wait_timeout: {len(left)} slave(s) still shutting down after {module.params['wait_timeout']} s",
            instances=described(fleet),
            **result,
        )
    if not ec2.delete_security_group():
        module.warn(f"The security group {ec2.name} is still in use by slaves shutting down: run again to delete it")
    return fleet, result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            conf=dict(type="path"),
            balancer_id=dict(type="str"),
            count=dict(type="int"),
            min=dict(type="int"),
            max=dict(type="int"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=600),
            key_name=dict(type="str", no_log=False),
            instance_metadata=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("count", "min"), ("count", "max")],
        required_together=[("min", "max")],
        required_one_of=[("conf", "balancer_id")],
        required_if=[("state", "present", ("conf",)), ("state", "present", ("count", "min"), True)],
        supports_check_mode=True,
    )
    p = module.params
    for name in ("count", "min", "max"):
        if p[name] is not None and p[name] < 0:
            module.fail_json(msg=f"{name}: must be 0 or more, not {p[name]}")
    if p["min"] is not None and p["max"] < p["min"]:
        module.fail_json(msg=f"max: {p['max']} is less than min {p['min']}")
    if p["wait_timeout"] <= 0:
        module.fail_json(msg=f"wait_timeout: must be a positive number of seconds, not {p['wait_timeout']}")

    conf = None
    if p["conf"] is not None:
        try:
            conf = load_conf(p["conf"])
        except ConfError as exc:
            module.fail_json(msg=str(exc), errors=exc.errors)
    balancer_id = p["balancer_id"] or conf.resolved_balancer_id(socket.gethostname())
    master = Master()
    if conf is not None:
        master = discover_master(conf, InstanceMetadata() if p["instance_metadata"] else None)
    extra = dict(
        config=Config(
            retries={"mode": "standard", "total_max_attempts": DEFAULT_MAX_ATTEMPTS}, user_agent_extra=USER_AGENT
        )
    )
    if not module.region:
        # No region option (nor AWS_REGION/AWS_DEFAULT_REGION, which amazon.aws reads for it): the daemon's rule.
        try:
            extra["region"] = resolved_region(
                conf.slave.region if conf is not None else None,
                session=aws_session(profile=p.get("profile") or None),
                master_region=master.region,
            )
        except EC2Error as exc:
            module.fail_json(msg=str(exc), code=exc.code)
    try:
        ec2 = EC2(module.client("ec2", **extra), balancer_id)
    except ValueError as exc:
        module.fail_json(msg=f"balancer_id: {exc}")

    try:
        if p["state"] == "absent":
            fleet, result = absent(module, ec2)
        else:
            count = p["count"]
            band = Band(count, count) if count is not None else Band(p["min"], p["max"])
            fleet, result = present(module, ec2, conf, master, band)
    except EC2Error as exc:
        module.fail_json(msg=str(exc), code=exc.code, balancer_id=balancer_id)
    renderers = fleet.renderers(conf.slave.ports) if conf is not None else ()
    module.exit_json(balancer_id=balancer_id, instances=described(fleet), renderers=list(renderers), **result)


if __name__ == "__main__":
    main()
