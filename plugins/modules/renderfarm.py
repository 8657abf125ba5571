#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: renderfarm
short_description: Manage the render slaves in the GBrowse master's renderfarm.conf
version_added: 0.1.0
description:
  - Adds render slave URLs to, removes them from, or sets the C(remote renderer) list of C([GENERAL]) in
    GBrowse's C(renderfarm.conf), and sets C(renderfarm) to C(1) when the list is not empty and C(0) when it is,
    as the balancer daemon and the original C(gbrowse_configure_slaves) do.
  - Every other line of the file is kept. The file is written atomically (temporary file in the same directory,
    fsync, rename; owner and mode kept), and only when the set of slaves or the on/off flag changes; a different
    order or spelling of the same set is no change.
  - Apache must reload to use a new list. This module does not reload it; notify a handler in your play when it
    reports C(changed).
  - The same code writes the file for the C(gbrowse_aws_balancer) daemon.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  path:
    description:
      - The master's C(renderfarm.conf).
      - A missing file counts as an empty render farm; it is created when slaves are added.
    type: path
    required: true
    aliases: [dest]
  renderers:
    description:
      - Render slave URLs, like C(http://10.0.0.5:8101).
      - Each must be an C(http://) or C(https://) URL with a host and without spaces.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(present) adds O(renderers) to those in the file.
      - V(absent) removes O(renderers) from those in the file.
      - V(exact) makes O(renderers) the whole list; V(exact) with an empty list empties the render farm.
    type: str
    choices: [present, absent, exact]
    default: present
seealso:
  - module: gmod.gbrowse_aws.spot_fleet
    description: Its C(renderers) result lists the URLs of the ready slaves.
"""

EXAMPLES = r"""
- name: Put two render slaves into the render farm
  gmod.gbrowse_aws.renderfarm:
    path: /etc/gbrowse2/renderfarm.conf
    renderers:
      - http://10.0.0.5:8101
      - http://10.0.0.6:8101
  notify: Reload Apache

- name: Take one slave out
  gmod.gbrowse_aws.renderfarm:
    path: /etc/gbrowse2/renderfarm.conf
    renderers: [http://10.0.0.6:8101]
    state: absent
  notify: Reload Apache

- name: Make the render farm exactly the ready slaves of the fleet
  gmod.gbrowse_aws.renderfarm:
    path: /etc/gbrowse2/renderfarm.conf
    renderers: "{{ fleet.renderers }}"
    state: exact
  notify: Reload Apache

- name: Render everything on the master again
  gmod.gbrowse_aws.renderfarm:
    path: /etc/gbrowse2/renderfarm.conf
    state: exact
  notify: Reload Apache
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/gbrowse2/renderfarm.conf
renderers:
  description: The render slave URLs in the file afterwards (in check mode, as they would be), sorted.
  returned: always
  type: list
  elements: str
  sample: [http://10.0.0.5:8101, http://10.0.0.6:8101]
enabled:
  description: Whether the render farm is on afterwards (C(renderfarm = 1)).
  returned: always
  type: bool
  sample: true
added:
  description: URLs that were not in the file before.
  returned: always
  type: list
  elements: str
  sample: [http://10.0.0.6:8101]
removed:
  description: URLs that were in the file before and are no longer.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import read_renderfarm, update_renderfarm
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._url import is_http_url


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True, aliases=["dest"]),
            renderers=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent", "exact"], default="present"),
        ),
        supports_check_mode=True,
    )
    path, state = module.params["path"], module.params["state"]
    given = [url.strip() for url in module.params["renderers"] if url.strip()]
    bad = [url for url in given if not is_http_url(url)]
    if bad:
        module.fail_json(msg=f"renderers: not an http:// or https:// URL with a host: {', '.join(map(repr, bad))}")
    try:
        old = read_renderfarm(path).renderers
        if state == "present":
            wanted = list(old) + given
        elif state == "absent":
            wanted = [url for url in old if url not in given]
        else:
            wanted = given
        update = update_renderfarm(path, wanted, check=module.check_mode)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        module.fail_json(msg=f"path: {reason}" if path in reason else f"path: {path}: {reason}")
    except ValueError as exc:
        module.fail_json(msg=f"renderers: {exc}")
    result = dict(
        changed=update.changed,
        path=path,
        renderers=list(update.new.renderers),
        enabled=update.new.enabled,
        added=[url for url in update.new.renderers if url not in update.old.renderers],
        removed=[url for url in update.old.renderers if url not in update.new.renderers],
    )
    if module._diff:
        result["diff"] = dict(before=update.before, after=update.after, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
