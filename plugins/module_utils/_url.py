# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What counts as an http(s) URL here: one rule for every URL the balancer is given.

The conf's ``server_status_url``, the status reader's URL, the renderfarm
module's renderers and the AWS endpoint variables all go to an HTTP client.
Each used to check them in its own words, and the checks drifted (one took a
space, another port 0). Callers keep their own messages; the rule is here.
"""

from __future__ import annotations

import urllib.parse

#: The message callers use when they have nothing more specific to say.
NOT_HTTP_URL = "is not an http:// or https:// URL with a host"


def split_http_url(text: str) -> urllib.parse.SplitResult:
    """``text`` split, when it is an http:// or https:// URL with a host, a port in 1..65535 if any and no
    whitespace; ValueError saying what is wrong otherwise (it never names the URL: it may hold a password)."""
    if not isinstance(text, str):
        raise ValueError("not text")
    if any(c.isspace() for c in text):
        raise ValueError("whitespace in the URL")
    parts = urllib.parse.urlsplit(text)  # ValueError for a bad [IPv6] host
    port = parts.port  # ValueError when not a number or out of range
    if port == 0:
        raise ValueError("port 0")
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("not http:// or https://")
    if not parts.hostname:
        raise ValueError("no host")
    return parts


def is_http_url(text: str) -> bool:
    """True when :func:`split_http_url` accepts ``text``."""
    try:
        split_http_url(text)
    except ValueError:
        return False
    return True


__all__ = ["NOT_HTTP_URL", "is_http_url", "split_http_url"]
