# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The boot state of an EC2 instance as EC2 reports it, for a failure message.

    python sync_boot_state.py INSTANCE_ID [REGION]

Run by playbooks/tasks/sync_copy.yml on the master with the controller's
Python (boto3 comes with amazon.aws) when the staging instance never let it
log in. Prints its state, its status checks (DescribeInstanceStatus) and the
end of its console output (GetConsoleOutput; EC2 may need minutes after a
boot to have any). Credentials, region and endpoint as for every AWS tool
(environment, profiles). Each part that cannot be read says why; exits 0.
"""

from __future__ import annotations

import base64
import sys

CONSOLE_LINES = 25


def main(argv: list[str]) -> int:
    import boto3  # pylint: disable=import-outside-toplevel

    instance_id = argv[1]
    ec2 = boto3.client("ec2", **({"region_name": argv[2]} if len(argv) > 2 and argv[2] else {}))
    parts = []
    try:
        found = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)["InstanceStatuses"]
        if found:
            status = found[0]
            parts.append(
                f"state {status['InstanceState']['Name']}, status checks: system {status.get('SystemStatus', {}).get('Status', '?')},"
                f" instance {status.get('InstanceStatus', {}).get('Status', '?')}"
            )
        else:
            parts.append("EC2 does not know it any more")
    except Exception as exc:  # pylint: disable=broad-exception-caught
        parts.append(f"no status ({exc})")
    try:
        output = ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
        try:
            text = base64.b64decode(output, validate=True).decode("utf-8", "replace")
        except ValueError:
            text = output
        lines = [line.rstrip() for line in text.replace("\r", "").splitlines() if line.strip()]
        parts.append(
            f"console output, last {min(len(lines), CONSOLE_LINES)} lines:\n" + "\n".join(lines[-CONSOLE_LINES:])
            if lines
            else "no console output yet"
        )
    except Exception as exc:  # pylint: disable=broad-exception-caught
        parts.append(f"no console output ({exc})")
    print("; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
