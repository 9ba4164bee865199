"""The studio's guard, an ASGI middleware in front of every route.

- Bound to a loopback address, it answers only requests whose Host header names a loopback host (so a
  web page elsewhere cannot reach it through DNS rebinding).
- Bound to any other address, it requires the token the server printed on every request: as a cookie
  (set when the printed URL, which carries ``?token=``, is first opened), an ``Authorization: Bearer``
  header, or the ``token`` query parameter. Without it: 401.
- A request that changes something (any method but GET, HEAD, OPTIONS) from another origin is refused (403).
- A request body over ``max_body`` bytes is refused (413) before it is read, or as soon as it passes the
  limit when it comes without a length.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "facetwin_studio_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1)."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class BodyTooLarge(Exception):
    pass


class Guard:
    """Wraps the app. ``token``: required on every request when set (it must be set for a non-loopback bind)."""

    def __init__(self, app: ASGIApp, token: str | None, loopback_only: bool, max_body: int) -> None:
        self.app, self.token, self.loopback_only, self.max_body = app, token, loopback_only, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.loopback_only and not is_loopback(host.rsplit(":", 1)[0] if not host.endswith("]") else host):
            await _plain(send, 400, "this studio answers only at a loopback address (Host header refused)")
            return
        if self.token is not None:
            given = self._token_of(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await _plain(send, 401, "a token is required: open the URL the studio printed when it started")
                return
            if _query_token(scope) is not None and scope.get("method") in SAFE_METHODS:
                await self._strip_token(scope, send)
                return
        method = scope.get("method", "GET")
        if method not in SAFE_METHODS and not _same_origin(headers):
            await _plain(send, 403, "refused: a change requested from another origin")
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _plain(send, 413, f"request body over the limit ({self.max_body / 2**20:.0f} MiB)")
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body over the limit ({self.max_body / 2**20:.0f} MiB)")

    def _token_of(self, scope: Scope, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        query = _query_token(scope)
        if query is not None:
            return query
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is the same as none
            return None
        return cookie[COOKIE].value if COOKIE in cookie else None

    async def _strip_token(self, scope: Scope, send: Send) -> None:
        """The printed URL was opened: keep the token in a cookie and show the URL without it."""
        query = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "token"])
        location = scope.get("path", "/") + (f"?{query}" if query else "")
        assert self.token is not None
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")),
            (b"set-cookie", f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()),
            (b"content-length", b"0")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


def _query_token(scope: Scope) -> str | None:
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == "token":
            return value
    return None


def _same_origin(headers: dict[str, str]) -> bool:
    if headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no Origin: not a browser's cross-site form; "null": an opaque origin, refused
    return origin.split("://", 1)[-1] == headers.get("host", "")


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
