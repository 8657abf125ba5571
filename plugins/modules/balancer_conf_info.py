#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: balancer_conf_info
short_description: Read the balancer's aws_balancer.conf
version_added: 0.1.0
description:
  - Reads and validates C(aws_balancer.conf) with the balancer's own reader and returns every setting in effect
    (defaults filled in), the load table and the balancer id the daemon would use on this host.
  - Errors in the file fail the module with the balancer's C(FILE:LINE) errors, all of them at once.
  - The sync playbook (C(gmod.gbrowse_aws.sync)) reads the slave image, subnet, zone and current
    C(data_snapshots) through it.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.attributes.INFO_MODULE
options:
  path:
    description:
      - The C(aws_balancer.conf) to read.
    type: path
    required: true
    aliases: [conf]
  hostname:
    description:
      - The host name the default balancer id is derived from (see RV(balancer_id)).
      - Default the name of the host the module runs on, as the daemon uses.
    type: str
seealso:
  - module: gmod.gbrowse_aws.balancer_conf
"""

EXAMPLES = r"""
- name: Read the balancer's settings
  gmod.gbrowse_aws.balancer_conf_info:
    path: /etc/gbrowse2/aws_balancer.conf
  register: conf

- name: Show the data snapshots new slaves boot with
  ansible.builtin.debug:
    msg: "{{ conf.slave.data_snapshots | join(' ') or 'none yet' }}"
"""

RETURN = r"""
path:
  description: The file read.
  returned: success
  type: str
  sample: /etc/gbrowse2/aws_balancer.conf
balancer_id:
  description:
    - The id that tags this balancer's resources in EC2, C(balancer_id) of C([MASTER]) when set, else derived from
      the host name and the file's absolute path as the daemon derives it.
  returned: success
  type: str
  sample: gbrowse-1a2b3c4d
hostname:
  description: The host name used for RV(balancer_id).
  returned: success
  type: str
  sample: gbrowse
master:
  description:
    - The C([MASTER]) settings in effect, defaults filled in; unset optional keys are V(null).
    - A password in V(server_status_url) is shown as C(***) (C(http://user:***@host/server-status)).
  returned: success
  type: dict
  sample:
    external_ip: null
    poll_interval: 0.5
    server_status_url: http://localhost/server-status
    balancer_id: null
slave:
  description:
    - The C([SLAVE]) settings in effect, defaults filled in; unset optional keys are V(null).
    - Lists (V(instance_types), V(ports), V(data_snapshots)) are lists.
  returned: success
  type: dict
  sample:
    instance_types: [m5.large]
    spot_bid: 0.08
    ports: [8101]
    region: us-west-2
    image_id: ami-0123456789abcdef0
    data_snapshots: [snap-0123456789abcdef0]
    availability_zone: null
    subnet: subnet-0123456789abcdef0
    security_group: null
    address: auto
    ready_timeout: 5.0
load_table:
  description: The rows of C([LOAD TABLE]) in ascending order.
  returned: success
  type: list
  elements: dict
  sample: [{threshold: 0.1, min: 0, max: 1}, {threshold: 1.0, min: 1, max: 3}]
errors:
  description: The balancer's C(FILE:LINE) errors, when the file is wrong.
  returned: failure
  type: list
  elements: str
"""

import dataclasses
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, load_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import masked_url


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True, aliases=["conf"]),
            hostname=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    hostname = module.params["hostname"] or socket.gethostname()
    try:
        conf = load_conf(path)
    except ConfError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    master = {k: _plain(v) for k, v in dataclasses.asdict(conf.master).items()}
    master["server_status_url"] = masked_url(master["server_status_url"])
    module.exit_json(
        changed=False,
        path=path,
        hostname=hostname,
        balancer_id=conf.resolved_balancer_id(hostname),
        master=master,
        slave={k: _plain(v) for k, v in dataclasses.asdict(conf.slave).items()},
        load_table=[dict(threshold=row.threshold, min=row.min, max=row.max) for row in conf.table],
    )


if __name__ == "__main__":
    main()
