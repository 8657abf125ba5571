# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every gmod.gbrowse_aws module needs where it runs (tests/unit/test_packaging.py checks it
against tests/config.yml and requirements.txt)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
requirements:
  - python 3.11 to 3.13
"""

    # Together with DOCUMENTATION, for modules that call AWS (the ranges of requirements.txt).
    BOTO3 = r"""
options: {}
requirements:
  - boto3 >= 1.35.0
  - botocore >= 1.35.0
"""
