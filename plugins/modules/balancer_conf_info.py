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
  - The sync playbook (C(gmod.gbrowse_aws.sync)) reads the slave image, subnet, zone, current
    C(data_snapshots) and the region (RV(region)) through it.
  - Also tells where this host's GBrowse keeps its configuration and databases (RV(gbrowse)), found as GBrowse
    finds them; without O(path) that is all it returns, so a play can ask before any C(aws_balancer.conf) exists.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
  - gmod.gbrowse_aws.attributes.INFO_MODULE
options:
  path:
    description:
      - The C(aws_balancer.conf) to read.
      - Without it nothing is read; RV(path) is where the balancer looks by default (RV(gbrowse.balancer_conf)).
    type: path
    aliases: [conf]
  hostname:
    description:
      - The host name the default balancer id is derived from (see RV(balancer_id)).
      - Default the name of the host the module runs on, as the daemon uses.
    type: str
  instance_metadata:
    description:
      - Ask the instance metadata service for the master's own region when the conf sets none (see RV(region)).
      - Off EC2 that costs at most a second; C(AWS_EC2_METADATA_DISABLED=true) skips it too.
    type: bool
    default: true
seealso:
  - module: gmod.gbrowse_aws.balancer_conf
"""

EXAMPLES = r"""
- name: Read the balancer's settings
  gmod.gbrowse_aws.balancer_conf_info:
    path: /etc/gbrowse2/aws_balancer.conf
  register: conf

- name: Ask where GBrowse keeps its configuration on this master
  gmod.gbrowse_aws.balancer_conf_info:
  register: where

- name: Show it
  ansible.builtin.debug:
    msg: "GBrowse's configuration is in {{ where.gbrowse.conf_dir }} ({{ where.gbrowse.conf_dir_from }})"

- name: Show the data snapshots new slaves boot with
  ansible.builtin.debug:
    msg: "{{ conf.slave.data_snapshots | join(' ') or 'none yet' }}"
"""

RETURN = r"""
path:
  description: The file read; without O(path), the balancer's default C(aws_balancer.conf) (which may not exist).
  returned: always
  type: str
  sample: /etc/gbrowse/aws_balancer.conf
gbrowse:
  description:
    - Where GBrowse keeps its configuration and databases on this host, as GBrowse itself finds them
      (C(GBROWSE_CONF), else C(GBrowse::ConfigData), else the first of C(/etc/gbrowse2), C(/etc/gbrowse),
      C(/opt/gbrowse/etc) that holds C(GBrowse.conf) or C(aws_balancer.conf)), and where each came from.
  returned: always
  type: dict
  contains:
    conf_dir:
      description: GBrowse's configuration directory.
      type: str
      sample: /etc/gbrowse
    conf_dir_from:
      description: Where RV(gbrowse.conf_dir) came from.
      type: str
      sample: GBrowse's ConfigData.pm, /usr/share/perl5/GBrowse/ConfigData.pm
    databases:
      description: GBrowse's databases directory (what the sync copies).
      type: str
      sample: /var/lib/gbrowse/databases
    databases_from:
      description: Where RV(gbrowse.databases) came from.
      type: str
      sample: db_base in /etc/gbrowse/GBrowse.conf
    balancer_conf:
      description: The balancer's default C(aws_balancer.conf).
      type: str
      sample: /etc/gbrowse/aws_balancer.conf
    renderfarm_conf:
      description: The default C(renderfarm_conf), the file GBrowse.conf includes.
      type: str
      sample: /etc/gbrowse/renderfarm.conf
balancer_id:
  description:
    - The id that tags this balancer's resources in EC2, C(balancer_id) of C([MASTER]) when set, else derived from
      the host name and the file's absolute path as the daemon derives it.
  returned: when O(path) is given
  type: str
  sample: gbrowse-1a2b3c4d
hostname:
  description: The host name used for RV(balancer_id).
  returned: when O(path) is given
  type: str
  sample: gbrowse
master:
  description:
    - The C([MASTER]) settings in effect, defaults filled in; unset optional keys are V(null).
    - A password in V(server_status_url) is shown as C(***) (C(http://user:***@host/server-status)).
    - V(renderfarm_conf) is the file the balancer writes (RV(gbrowse.renderfarm_conf) when the key is unset).
  returned: when O(path) is given
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
  returned: when O(path) is given
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
    ready_misses: 3
    refresh_batch: 1
region:
  description:
    - The region the balancer works in, resolved as the daemon resolves it, in order - C([SLAVE] region), the
      master's own region when it runs on EC2 (instance metadata), C(AWS_REGION), the AWS configuration as boto3
      reads it (C(AWS_DEFAULT_REGION), the C(region) of the profile, C(AWS_PROFILE) or default, in
      C(~/.aws/config)), else V(us-east-1).
    - V(null) when the AWS configuration cannot be read (no boto3, an unknown profile); a warning says why.
  returned: when O(path) is given
  type: str
  sample: us-west-2
region_from:
  description: Where RV(region) came from - V(conf), V(instance metadata), V(AWS_REGION), V(AWS config) or V(default).
  returned: when O(path) is given
  type: str
  sample: conf
load_table:
  description: The rows of C([LOAD TABLE]) in ascending order.
  returned: when O(path) is given
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
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2Error, region_and_source
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import find_layout
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metadata import InstanceMetadata
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import masked_url


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _region(module, conf):
    """(region, where from) by the daemon's rule; (None, None) with a warning when AWS's configuration is broken."""
    master_region = None
    if module.params["instance_metadata"] and not conf.slave.region:
        metadata = InstanceMetadata()
        master_region = metadata.region if metadata.available() else None
    try:
        return region_and_source(conf.slave.region, master_region=master_region)
    except EC2Error as exc:
        module.warn(f"region: {exc}")
        return None, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", aliases=["conf"]),
            hostname=dict(type="str"),
            instance_metadata=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    gbrowse = find_layout()
    if not module.params["path"]:
        module.exit_json(changed=False, path=gbrowse.balancer_conf, gbrowse=gbrowse.as_dict())
    path = module.params["path"]
    hostname = module.params["hostname"] or socket.gethostname()
    try:
        conf = load_conf(path)
    except ConfError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors, gbrowse=gbrowse.as_dict())
    resolved = dataclasses.replace(conf.master, renderfarm_conf=conf.resolved_renderfarm_conf(gbrowse.conf_dir))
    master = {k: _plain(v) for k, v in dataclasses.asdict(resolved).items()}
    master["server_status_url"] = masked_url(master["server_status_url"])
    region, region_from = _region(module, conf)
    module.exit_json(
        changed=False,
        path=path,
        gbrowse=gbrowse.as_dict(),
        hostname=hostname,
        balancer_id=conf.resolved_balancer_id(hostname),
        master=master,
        slave={k: _plain(v) for k, v in dataclasses.asdict(conf.slave).items()},
        region=region,
        region_from=region_from,
        load_table=[dict(threshold=row.threshold, min=row.min, max=row.max) for row in conf.table],
    )


if __name__ == "__main__":
    main()
