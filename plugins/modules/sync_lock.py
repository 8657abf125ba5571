#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: sync_lock
short_description: A lock that keeps two data syncs of one balancer from running at once
version_added: 0.1.0
description:
  - Takes or releases a lock file on the master for the length of a playbook run, for the sync playbook
    (C(gmod.gbrowse_aws.sync)) and its clean-up playbook.
  - The lock names its owner, the C(ansible-playbook) process running the play (found among the module's
    ancestors; its PID and start time are recorded, so a recycled PID does not count). Once that process is gone
    (killed, crashed) the lock is stale and the next O(state=present) takes it over, reporting RV(replaced).
  - When no C(ansible-playbook) process is found (the play runs on the master over ssh from another machine), the
    lock goes stale after O(stale_after) seconds instead.
author:
  - gbrowse_aws developers (@GMOD)
extends_documentation_fragment:
  - gmod.gbrowse_aws.attributes
  - gmod.gbrowse_aws.requirements
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every O(state=present) takes a new lock (with a new RV(token)) or fails because one is held.
options:
  path:
    description:
      - The lock file. Its directory is made (mode C(0700)) if missing. A sidecar C(PATH.guard) is kept next to it.
    type: path
    required: true
  state:
    description:
      - V(present) takes the lock, failing when a live owner holds it.
      - V(absent) releases the lock taken with O(token); a lock with another token is left alone.
      - V(stale) removes the lock only if its owner is gone, failing when it is live.
    type: str
    choices: [present, absent, stale]
    default: present
  token:
    description:
      - The RV(token) returned when the lock was taken. Required with O(state=absent).
    type: str
  purpose:
    description:
      - A few words saying who holds the lock, shown to whoever finds it held.
    type: str
    default: ''
  stale_after:
    description:
      - Seconds after which a lock without a known owner process counts as stale.
    type: int
    default: 86400
seealso:
  - module: gmod.gbrowse_aws.balancer_conf_info
"""

EXAMPLES = r"""
- name: Take the sync lock
  gmod.gbrowse_aws.sync_lock:
    path: /run/lock/gbrowse_aws-sync-gbrowse-1a2b3c4d.lock
    purpose: data sync of /etc/gbrowse2/aws_balancer.conf
  register: lock

- name: Release it
  gmod.gbrowse_aws.sync_lock:
    path: /run/lock/gbrowse_aws-sync-gbrowse-1a2b3c4d.lock
    state: absent
    token: "{{ lock.token }}"
"""

RETURN = r"""
token:
  description: Identifies this lock; give it to O(state=absent).
  returned: O(state=present)
  type: str
  sample: 3f2a9c0d5e7b1a44
owner_pid:
  description: The PID of the process recorded as the owner, V(null) when none was found.
  returned: O(state=present)
  type: int
  sample: 4242
replaced:
  description: The stale lock that was taken over or removed (its holder's host, PID and start time), else V(null).
  returned: O(state=present) or O(state=stale)
  type: dict
  sample: {host: gbrowse, pid: 4100, since: 1764028800.0, purpose: data sync}
holder:
  description: Who holds the lock, when it could not be taken.
  returned: failure
  type: str
  sample: data sync by pid 4100 on gbrowse since 2026-11-25 10:00:00 UTC
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _sync_lock as lock


def _info(state):
    if state is None:
        return None
    data = state.as_dict()
    data.pop("token", None)
    return data


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent", "stale"], default="present"),
            token=dict(type="str", no_log=False),
            purpose=dict(type="str", default=""),
            stale_after=dict(type="int", default=86400),
        ),
        required_if=[("state", "absent", ("token",))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["state"] == "present":
            got = lock.acquire(
                p["path"],
                owner=lock.find_controller(),
                purpose=p["purpose"],
                stale_after=p["stale_after"],
                check=module.check_mode,
            )
            module.exit_json(
                changed=True,
                token=got.state.token,
                owner_pid=got.state.owner.pid if got.state.owner else None,
                replaced=_info(got.replaced),
            )
        elif p["state"] == "absent":
            module.exit_json(changed=lock.release(p["path"], p["token"], check=module.check_mode))
        else:
            removed = lock.break_stale(p["path"], p["stale_after"], check=module.check_mode)
            module.exit_json(changed=removed is not None, replaced=_info(removed))
    except lock.LockError as exc:
        module.fail_json(msg=str(exc), holder=str(exc).partition("is held: ")[2] or None)
    except OSError as exc:
        module.fail_json(msg=f"{p['path']}: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
