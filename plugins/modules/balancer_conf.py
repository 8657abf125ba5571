#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: balancer_conf
short_description: Set keys and the load table of the balancer's aws_balancer.conf
version_added: 0.1.0
description:
  - Sets or removes C(key = value) settings of C([MASTER]) and C([SLAVE]) in C(aws_balancer.conf), and replaces the
    rows of its C([LOAD TABLE]), keeping every other byte of the file (comments, spacing, line endings).
  - The edited file is validated with the balancer's own reader before it is written; a result the balancer would
    refuse is not written, and the module fails with that reader's C(FILE:LINE) errors.
  - The file is written atomically (temporary file in the same directory, fsync, rename; owner and mode kept), and
    only when it changes.
  - Option names follow M(community.general.ini_file) where they overlap.
  - The running balancer reads the file again on C(SIGHUP) (C(systemctl reload gbrowse-aws-balancer)); notify a
    handler for that.
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
      - The C(aws_balancer.conf) to edit.
      - A missing file is treated as empty (see O(create)); the edits must then make a complete, valid file.
    type: path
    required: true
    aliases: [dest]
  section:
    description:
      - The section of O(option), V(MASTER) or V(SLAVE), in any case.
      - Required with O(option).
    type: str
  option:
    description:
      - A key of O(section), like V(image_id), V(data_snapshots), V(spot_bid) or V(external_ip).
    type: str
  value:
    description:
      - The value of O(option) for O(state=present). A list is written as its items separated by spaces
        (V(data_snapshots), V(ports), V(instance_type)).
      - An empty string writes C(key =), which the balancer reads as "unset" (the default applies).
      - Numbers are checked against the balancer's documented bounds (for example V(poll_interval) 0.01 to 1440
        minutes, V(spot_bid) 0.001 to 1000 USD/hour; the table in C(docs/balancer.md)); V(nan), V(inf) and control
        characters are refused, with the C(FILE:LINE) the value would have.
      - Required with O(option) and O(state=present).
    type: raw
  comment:
    description:
      - "A trailing comment for the line of O(option), written after the value and C(#); the sync writes
        C(synchronized with local filesystem on DATE) there, as the original script did."
      - Omitted, the line keeps the comment it has; V('') removes it.
      - Only with O(option) and O(state=present).
    type: str
  settings:
    description:
      - Several keys at once, as a dictionary of sections (V(MASTER), V(SLAVE)) each holding a dictionary of keys
        and values. Values are written as for O(value); O(state=absent) removes the keys and ignores the values.
      - A value may also be a dictionary with the keys C(value) and C(comment), to set the line's trailing comment
        as O(comment) does.
      - All of them are applied before the result is validated, so keys that must change together (like
        V(region) and V(availability_zone)) can.
      - Mutually exclusive with O(option).
    type: dict
  load_table:
    description:
      - Rows to replace the data rows of C([LOAD TABLE]) with (its comment lines are kept), in ascending order of
        O(load_table[].threshold).
      - From O(load_table[].threshold) requests per second on, the balancer keeps between O(load_table[].min) and
        O(load_table[].max) slaves (up to the next row's threshold).
      - Only with O(state=present). At most 100 rows.
    type: list
    elements: dict
    suboptions:
      threshold:
        description: Requests per second at which this row starts, from 0 to 1e9.
        type: float
        required: true
      min:
        description: Fewest slaves to run, from 0 to 1000.
        type: int
        required: true
      max:
        description: Most slaves to run, from 0 to 1000.
        type: int
        required: true
  state:
    description:
      - V(present) sets the keys (and the load table); V(absent) removes the keys' lines.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description:
      - Keep the previous file as C(PATH.bak) when the file changes.
    type: bool
    default: false
  create:
    description:
      - When V(false), fail if O(path) does not exist instead of creating it.
    type: bool
    default: true
notes:
  - Unlike M(community.general.ini_file), the module knows the file's keys and values, and refuses an unknown key
    or a wrong value.
seealso:
  - module: community.general.ini_file
  - module: gmod.gbrowse_aws.load_decision
"""

EXAMPLES = r"""
- name: Launch slaves from the newest data snapshot
  gmod.gbrowse_aws.balancer_conf:
    path: /etc/gbrowse2/aws_balancer.conf
    section: SLAVE
    option: data_snapshots
    value: [snap-0123456789abcdef0]
    comment: synchronized with local filesystem on Wed Nov 25 10:00:00 2026
    backup: true
  notify: Reload the balancer

- name: Image and bid together
  gmod.gbrowse_aws.balancer_conf:
    path: /etc/gbrowse2/aws_balancer.conf
    settings:
      SLAVE:
        image_id: ami-0123456789abcdef0
        spot_bid:
          value: 0.12
          comment: the on-demand price of m5.large
  notify: Reload the balancer

- name: Go back to the default poll interval
  gmod.gbrowse_aws.balancer_conf:
    path: /etc/gbrowse2/aws_balancer.conf
    section: MASTER
    option: poll_interval
    state: absent
  notify: Reload the balancer

- name: A bigger farm for the workshop
  gmod.gbrowse_aws.balancer_conf:
    path: /etc/gbrowse2/aws_balancer.conf
    load_table:
      - {threshold: 0, min: 2, max: 4}
      - {threshold: 5, min: 4, max: 8}
      - {threshold: 20, min: 8, max: 16}
  notify: Reload the balancer
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/gbrowse2/aws_balancer.conf
backup_file:
  description: Where the previous file was kept.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/gbrowse2/aws_balancer.conf.bak
errors:
  description: The balancer's C(FILE:LINE) errors about the result, when it was refused.
  returned: failure
  type: list
  elements: str
  sample: ["/etc/gbrowse2/aws_balancer.conf:14: spot_bid: 'cheap' is not a number"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, Edit, update_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import LoadRow
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import mask_urls


def _text(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True, aliases=["dest"]),
            section=dict(type="str"),
            option=dict(type="str"),
            value=dict(type="raw"),
            comment=dict(type="str"),
            settings=dict(type="dict"),
            load_table=dict(
                type="list",
                elements="dict",
                options=dict(
                    threshold=dict(type="float", required=True),
                    min=dict(type="int", required=True),
                    max=dict(type="int", required=True),
                ),
            ),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            backup=dict(type="bool", default=False),
            create=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("option", "settings")],
        required_together=[("section", "option")],
        required_one_of=[("option", "settings", "load_table")],
        required_by=dict(value=("option",), comment=("option",)),
        supports_check_mode=True,
    )
    p = module.params
    path, present = p["path"], p["state"] == "present"
    if p["option"] is not None and present and p["value"] is None:
        module.fail_json(msg="value: required with option and state=present (use '' to unset a key)")
    if p["comment"] is not None and not present:
        module.fail_json(msg="comment: only with state=present")
    if p["load_table"] is not None and not present:
        module.fail_json(msg="load_table: only with state=present")
    if not p["create"] and not os.path.exists(path):
        module.fail_json(msg=f"path: {path} does not exist (create=false)")

    wanted = {}
    if p["option"] is not None:
        wanted = {p["section"]: {p["option"]: p["value"]}}
        where = "option"
    else:
        wanted = p["settings"] or {}
        where = "settings"
    edits = []
    for section, values in wanted.items():
        if " ".join(str(section).split()).upper() not in ("MASTER", "SLAVE"):
            module.fail_json(msg=f"{'section' if where == 'option' else where}: {section!r} is not MASTER or SLAVE")
        if not isinstance(values, dict):
            module.fail_json(msg=f"settings: {section} must be a dictionary of keys and values")
        for option, value in values.items():
            comment = p["comment"]
            if isinstance(value, dict):
                if not set(value) <= {"value", "comment"} or "value" not in value:
                    module.fail_json(msg=f"settings: {section}.{option} must be a value or a dictionary of value and comment")
                value, comment = value["value"], value.get("comment")
                comment = None if comment is None else str(comment)
            edits.append(Edit(section, option, _text(value) if present else None, comment if present else None))
    table = None
    if p["load_table"] is not None:
        table = [LoadRow(row["threshold"], row["min"], row["max"]) for row in p["load_table"]]

    try:
        result = update_conf(path, edits, table, backup=p["backup"], check=module.check_mode)
    except ConfError as exc:
        # FILE:LINE errors are about the result; the others about an edit itself.
        errors = exc.errors
        located = all(error.startswith(path + ":") for error in errors)
        errors = [mask_urls(error) for error in errors]
        msg = "\n".join(errors)
        module.fail_json(msg=msg if located else f"{where}: {msg}", errors=errors)
    out = dict(changed=result.changed, path=path)
    if result.backup:
        out["backup_file"] = result.backup
    if module._diff:
        # Passwords in URLs (server_status_url) are masked here too.
        before, after = mask_urls(result.before), mask_urls(result.after)
        out["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
