# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The EC2 instance metadata service (IMDSv2), asked briefly and politely.

When the master runs on EC2 the balancer takes the slaves' image, zone,
subnet, VPC and the master's address from here, as the original did. Off EC2
the service does not exist: every question must fail fast (one attempt, one
second) and quietly (None / False, never an exception), so a daemon on a
laptop or in a data centre starts without delay.

Environment, as botocore reads it:

- ``AWS_EC2_METADATA_DISABLED=true``: never open any connection;
  :meth:`InstanceMetadata.available` is False.
- ``AWS_EC2_METADATA_SERVICE_ENDPOINT``: where the service is (tests point it
  at a loopback fake); default the link-local address below.

Only IMDSv2 is spoken: a session token from ``PUT /latest/api/token``, then
GETs carrying it. Answers are cached for the life of the object.
"""

from __future__ import annotations

import http.client
import os
import typing as t
import urllib.error
import urllib.request

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
META_PATH = "/latest/meta-data/"
TOKEN_TTL_SECONDS = 21600
MAX_ANSWER = 65536  # metadata values are tiny; never read more than this


def _disabled(environ: t.Mapping[str, str]) -> bool:
    return environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true"


class InstanceMetadata:
    """Questions to the instance metadata service; None/False when it cannot answer."""

    def __init__(
        self, endpoint: str | None = None, *, timeout: float = 1.0, environ: t.Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        self.disabled = _disabled(env)
        self.endpoint = (endpoint or env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.timeout = timeout
        #: Why the last question got no answer (for a log line), or None.
        self.last_error: str | None = None
        self._token: str | None = None
        self._available: bool | None = None
        self._cache: dict[str, str | None] = {}
        # Metadata is link-local: a proxy from http_proxy must never see these requests.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- transport --------------------------------------------------------

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        request = urllib.request.Request(self.endpoint + path, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return answer.status, answer.read(MAX_ANSWER).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, ""
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.last_error = f"{method} {path}: {exc}"
            return None

    def _fetch_token(self) -> str | None:
        answer = self._request("PUT", TOKEN_PATH, {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
        if answer is None:
            return None
        status, body = answer
        if status != 200 or not body.strip():
            self.last_error = f"PUT {TOKEN_PATH}: HTTP {status}"
            return None
        return body.strip()

    def get(self, path: str) -> str | None:
        """The value at ``/latest/meta-data/<path>``, or None.

        Answers (a value, or a 404) are cached; a failed connection is not,
        except that a failed token request marks the service unavailable
        until :meth:`refresh`.
        """
        if path in self._cache:
            return self._cache[path]
        value, definitive = self._get(path)
        if definitive:
            self._cache[path] = value
        return value

    def refresh(self) -> None:
        """Forget every cached answer and the token: ask again next time."""
        self._cache.clear()
        self._token = None
        self._available = None

    def _get(self, path: str) -> tuple[str | None, bool]:
        if self.disabled:
            self.last_error = "disabled by AWS_EC2_METADATA_DISABLED"
            return None, True
        if self._available is False:
            return None, True
        if self._token is None:
            self._token = self._fetch_token()
            if self._token is None:
                self._available = False
                return None, True
        for attempt in range(2):  # a second time only after an expired token (401)
            answer = self._request("GET", META_PATH + path, {"X-aws-ec2-metadata-token": self._token})
            if answer is None:
                return None, False
            status, body = answer
            if status == 200:
                return body.strip(), True
            if status == 401 and attempt == 0:
                self._token = self._fetch_token()
                if self._token is None:
                    return None, False
                continue
            self.last_error = f"GET {META_PATH}{path}: HTTP {status}"
            return None, status == 404
        return None, False

    # -- questions --------------------------------------------------------

    def available(self) -> bool:
        """True when a metadata service answers (we run on EC2). Asked once, then cached."""
        if self._available is None:
            self._available = self.get("instance-id") is not None
        return self._available

    @property
    def instance_id(self) -> str | None:
        return self.get("instance-id")

    @property
    def availability_zone(self) -> str | None:
        return self.get("placement/availability-zone")

    @property
    def region(self) -> str | None:
        region = self.get("placement/region")
        if region:
            return region
        zone = self.availability_zone
        return zone[:-1] if zone and zone[-1].isalpha() else None

    @property
    def image_id(self) -> str | None:
        return self.get("ami-id")

    @property
    def private_ip(self) -> str | None:
        return self.get("local-ipv4")

    @property
    def public_ip(self) -> str | None:
        return self.get("public-ipv4")  # 404 (None) when the instance has none

    @property
    def mac(self) -> str | None:
        return self.get("mac")

    def _interface(self, leaf: str) -> str | None:
        mac = self.mac
        return self.get(f"network/interfaces/macs/{mac}/{leaf}") if mac else None

    @property
    def subnet_id(self) -> str | None:
        return self._interface("subnet-id")

    @property
    def vpc_id(self) -> str | None:
        return self._interface("vpc-id")

    @property
    def security_group_ids(self) -> tuple[str, ...] | None:
        value = self._interface("security-group-ids")
        return None if value is None else tuple(line.strip() for line in value.splitlines() if line.strip())
