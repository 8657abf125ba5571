#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mod_status_info
short_description: Read Apache's server-status, and the current request rate
version_added: 0.1.0
description:
  - Reads the machine-readable page of Apache's mod_status (C(server-status?auto)) and returns every line of it,
    names snake_cased (C(Total Accesses) becomes RV(total_accesses), C(BusyWorkers) RV(busy_workers)), numbers as
    numbers.
  - With O(interval) greater than 0, reads the page twice, O(interval) seconds apart, and returns the current
    request rate RV(rate), computed as the balancer daemon computes the load it scales on (the difference of
    C(Total Accesses), less its own request, over the time between; a restart of Apache in between is detected).
    Apache's own C(ReqPerSec) (RV(req_per_sec)) is an average over its whole uptime.
  - Apache needs C(ExtendedStatus On) for C(Total Accesses).
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
  - gmod.gbrowse_aws.attributes.INFO_MODULE
options:
  url:
    description:
      - The server-status URL, like V(http://localhost/server-status). C(?auto) is added when missing.
    type: str
    required: true
  timeout:
    description: Seconds one reading may take.
    type: float
    default: 5
  validate_certs:
    description: Whether to check the server's TLS certificate (for C(https://) URLs).
    type: bool
    default: true
  username:
    description: User name for HTTP basic authentication.
    type: str
    aliases: [url_username]
  password:
    description: Password for HTTP basic authentication.
    type: str
    aliases: [url_password]
  interval:
    description:
      - Seconds between two readings for RV(rate); V(0) reads once and returns no rate.
    type: float
    default: 0
notes:
  - The proxy variables of the environment are not used; the status page is normally local.
seealso:
  - module: gmod.gbrowse_aws.load_decision
"""

EXAMPLES = r"""
- name: Read the master's status
  gmod.gbrowse_aws.mod_status_info:
    url: http://localhost/server-status
  register: status

- name: Busy?
  ansible.builtin.debug:
    msg: "{{ status.busy_workers }} busy, {{ status.idle_workers }} idle workers"

- name: The current request rate over 10 seconds, through basic authentication
  gmod.gbrowse_aws.mod_status_info:
    url: https://gbrowse.example.org/server-status
    username: monitor
    password: "{{ vault_status_password }}"
    interval: 10
  register: status

- name: Alert when the load is high
  ansible.builtin.debug:
    msg: "{{ status.rate | round(1) }} req/s"
  when: status.rate is not none and status.rate > 50
"""

RETURN = r"""
url:
  description: The URL read (C(?auto) added, never with a password).
  returned: always
  type: str
  sample: http://localhost/server-status?auto
host:
  description: The host name on the page's first line (Apache 2.4); empty when there is none.
  returned: always
  type: str
  sample: gbrowse.example.org
total_accesses:
  description: Requests served since the last restart.
  returned: always
  type: int
  sample: 123456
total_kbytes:
  description: Kilobytes served since the last restart.
  returned: when Apache prints it
  type: int
  sample: 45678
busy_workers:
  description: Workers serving a request.
  returned: when Apache prints it
  type: int
  sample: 3
idle_workers:
  description: Workers waiting for one.
  returned: when Apache prints it
  type: int
  sample: 72
req_per_sec:
  description: Apache's C(ReqPerSec), the average over its uptime.
  returned: when Apache prints it
  type: float
  sample: 0.0666667
uptime:
  description: Seconds since the last restart.
  returned: when Apache prints it
  type: int
  sample: 86400
server_version:
  description: The server's version string.
  returned: when Apache prints it
  type: str
  sample: Apache/2.4.62 (Debian)
scoreboard:
  description: One character per worker slot (C(_) waiting, C(W) sending, C(.) open slot, ...).
  returned: when Apache prints it
  type: str
  sample: "_W___......"
rate:
  description:
    - The current request rate in requests per second between the two readings.
    - V(null) when it cannot be known (Apache restarted in between and the page does not tell since when).
  returned: when O(interval) > 0
  type: float
  sample: 12.4
interval:
  description: Seconds between the two readings as measured.
  returned: when O(interval) > 0
  type: float
  sample: 5.002
restarted:
  description: Whether Apache restarted between the two readings.
  returned: when O(interval) > 0
  type: bool
  sample: false
fields:
  description:
    - Every C(Key:value) line of the page, snake_cased, numbers parsed (every value above, and all the others such
      as C(cpu_load), C(conns_total), C(load1)). They are also returned at the top level, except a name that is one
      of Ansible's own result keys (like C(changed)).
  returned: always
  type: dict
  sample: {"total_accesses": 123456, "busy_workers": 3, "cpu_load": 0.0123}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import LoadMeter, StatusError, status_url

# Result keys that belong to Ansible: a status line of that name stays in ``fields`` only.
_RESERVED = frozenset((
    "changed", "failed", "msg", "skipped", "invocation", "warnings", "deprecations", "exception", "diff", "url",
    "rate", "interval", "restarted", "fields", "ansible_facts", "rc", "stdout", "stderr",
))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            timeout=dict(type="float", default=5),
            validate_certs=dict(type="bool", default=True),
            username=dict(type="str", aliases=["url_username"]),
            password=dict(type="str", no_log=True, aliases=["url_password"]),
            interval=dict(type="float", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["timeout"] > 0:
        module.fail_json(msg=f"timeout: must be a positive number of seconds, not {p['timeout']}")
    if not p["interval"] >= 0:
        module.fail_json(msg=f"interval: must be 0 or more seconds, not {p['interval']}")
    try:
        shown = status_url(p["url"])
    except StatusError as exc:
        module.fail_json(msg=f"url: {exc}")
    meter = LoadMeter(
        p["url"],
        timeout=p["timeout"],
        username=p["username"],
        password=p["password"],
        validate_certs=p["validate_certs"],
    )
    try:
        load = meter.sample()
        if p["interval"] > 0:
            time.sleep(p["interval"])
            load = meter.sample()
    except StatusError as exc:
        module.fail_json(msg=str(exc))
    fields = load.status.as_dict()
    result = {key: value for key, value in fields.items() if key not in _RESERVED}
    result.update(changed=False, url=_public_url(shown), fields=fields)
    if p["interval"] > 0:
        result.update(rate=load.rate, interval=load.interval, restarted=load.restarted)
    module.exit_json(**result)


def _public_url(url):
    """``url`` without credentials (they go in the Authorization header)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


if __name__ == "__main__":
    main()
