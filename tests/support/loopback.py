# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP servers on 127.0.0.1 for the tests' fakes, and a proxy in front of moto to build EC2 fakes on.

:class:`LoopbackServer` runs a ``ThreadingHTTPServer`` on a free loopback
port in a background thread (``url``, ``start``, ``stop``, context manager);
a subclass gives its request handler class (``make_handler``), usually a
:class:`QuietHandler`. :class:`EC2Proxy` forwards everything to a loopback
upstream (the moto server) and lets a subclass refuse an EC2 call with EC2's
error answer instead (``refuse``), answer it itself without forwarding it
(``answer``: what moto does not do, e.g. a spot CreateFleet without capacity)
or look at and mend the answer (``answered``): tests/support/faultproxy.py,
tests/support/market.py and tests/support/volumes.py.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import typing as t
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: A refusal that closes the connection without an answer.
RESET = "reset"
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def ec2_error_body(code: str, message: str) -> bytes:
    """The XML body EC2 sends with an error."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode("utf-8")


def ec2_params(path: str, body: bytes) -> dict[str, str]:
    """The query-API parameters of a request (EC2 clients post them form-encoded); none for moto's own API."""
    if path.startswith("/moto-api"):
        return {}
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    return params


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no access log on stderr, and a way to answer with a body."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: t.Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, headers: t.Iterable[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("server", "date", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class LoopbackServer:
    """See the module doc. Works for dataclasses too: no ``__init__`` of its own."""

    thread_name = "loopback server"
    #: Where to listen: a loopback address, port 0 for a free one.
    address: tuple[str, int] = ("127.0.0.1", 0)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def make_handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.thread_name} not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> t.Self:
        if ipaddress.ip_address(self.address[0]) not in _LOOPBACK:
            raise ValueError(f"{self.thread_name}: {self.address[0]} is not a loopback address")
        self._server = ThreadingHTTPServer(self.address, self.make_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name=self.thread_name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> t.Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EC2Proxy(LoopbackServer):
    """See the module doc."""

    thread_name = "ec2 proxy"

    def __init__(self, upstream_url: str) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        if ipaddress.ip_address(parsed.hostname) not in _LOOPBACK:
            raise ValueError(f"upstream {parsed.hostname} is not on loopback")
        self.upstream = (parsed.hostname, parsed.port or 80)

    def refuse(self, action: str | None) -> tuple[int, str, str] | str | None:
        """(status, EC2 error code, message) to answer ``action`` with instead of forwarding it, RESET, or None."""
        return None

    def answer(self, action: str | None, params: dict[str, str]) -> bytes | None:
        """An EC2 answer (HTTP 200, XML) to give ``action`` instead of forwarding it, or None to forward it."""
        return None

    def answered(self, action: str | None, params: dict[str, str], status: int, data: bytes, headers: t.Any) -> bytes:
        """The upstream's answer to a forwarded request, as the client is to get it."""
        return data

    def forward(self, method: str, path: str, headers: t.Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
            return answer.status, [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP], data
        finally:
            conn.close()

    def make_handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                body = self.read_body()
                params = ec2_params(self.path, body)
                action = params.get("Action")
                refusal = proxy.refuse(action)
                if refusal == RESET:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if refusal is not None:
                    status, code, message = refusal
                    self.reply(status, [("Content-Type", "text/xml;charset=UTF-8")], ec2_error_body(code, message))
                    return
                own = proxy.answer(action, params)
                if own is not None:
                    self.reply(200, [("Content-Type", "text/xml;charset=UTF-8")], own)
                    return
                status, headers, data = proxy.forward(self.command, self.path, self.headers, body)
                self.reply(status, headers, proxy.answered(action, params, status, data, self.headers))

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

        return Handler
