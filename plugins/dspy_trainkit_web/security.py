"""The dashboard's guard: Host check, access token, and the origin and CSRF checks of state changes.

Rules (docs/dashboard.md, "Security"):
- the Host header must name the bind (or a loopback name when bound to loopback, or an `--allow-host`), which
  stops DNS-rebinding pages from reading the dashboard;
- with a token, every request carries it (`Authorization: Bearer`, or the cookie `/?token=...` sets once);
- every state change is a POST whose Origin (or, lacking one, Referer) is this dashboard, AND whose form field
  `csrf` (or header `X-CSRF-Token`) equals the `trainkit_csrf` cookie. A POST with neither header, or without
  the cookie, is refused: a cross-site form sent with no cookies at all is exactly what a cookie-only check
  (asgi-csrf) let through.
The middleware is plain ASGI, so it runs before any route and cannot be skipped by one.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import socket
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CSRF_COOKIE, TOKEN_COOKIE = "trainkit_csrf", "trainkit_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names (no port) the dashboard answers to for a bind address."""
    names = {bind.strip("[]").lower(), *(h.lower() for h in extra)}
    if is_loopback(bind):
        names |= {"localhost", "127.0.0.1", "::1"}
    elif bind in ("0.0.0.0", "::", ""):  # all interfaces: this machine's names
        names |= {"localhost", "127.0.0.1", "::1", socket.gethostname().lower(), socket.getfqdn().lower()}
        names |= own_addresses()
    return names


def own_addresses() -> set[str]:
    """This machine's IP addresses: those its host name resolves to, and the one it reaches other hosts from
    (a UDP socket's local address after connect, which sends nothing). A browser on the LAN that opens
    http://192.168.1.20:8765/ sends that address as Host, so a 0.0.0.0 bind answers it without --allow-host."""
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]).split("%")[0].lower())
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):  # documentation nets
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                found.add(str(udp.getsockname()[0]).split("%")[0].lower())
        except OSError:
            pass
    return found


def host_name(value: str) -> str:
    """`example.org:8765` -> `example.org`, `[::1]:8765` -> `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware applying the rules above to every HTTP request."""

    def __init__(self, app: Any, *, hosts: set[str], token: str | None):
        self.app = app
        self.hosts = hosts
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_page_headers(send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _cookies(headers.get("cookie", ""))
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            await _refuse(send, 400, "This dashboard does not answer to that Host name (see --allow-host).")
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if scope["method"] == "GET" and "token" in query and _same(query["token"], self.token):
                rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                await _redirect(send, local_path(scope["path"]) + (f"?{rest}" if rest else ""),
                                cookie=f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
                return
            given = headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else cookies.get(TOKEN_COOKIE, "")
            if not _same(given, self.token):
                await _refuse(send, 401, "This dashboard needs its access token: open it once as /?token=TOKEN, "
                                         "or send the header Authorization: Bearer TOKEN.")
                return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin") or _origin_of(headers.get("referer", ""))
            if not origin or origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                await _refuse(send, 403, "Refused: a change must come from a page of this dashboard "
                                         "(the request's Origin is missing or another site).")
                return
            if CSRF_COOKIE not in cookies:
                await _refuse(send, 403, "Refused: the form's CSRF cookie is missing; reload the page and retry.")
                return
        csrf = cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = csrf
        if CSRF_COOKIE in cookies:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", (
                    f"{CSRF_COOKIE}={csrf}; HttpOnly; SameSite=Strict; Path=/").encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


#: On every response: no page of the dashboard may be framed (a page on another port of the same host is
#: same-site, so its frame would carry the cookies and pass the Origin check: clickjacking), nor sniffed.
PAGE_HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
                (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%-]*")


def _with_page_headers(send: Any) -> Any:
    async def send_with_headers(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *PAGE_HEADERS]
        await send(message)
    return send_with_headers


def local_path(path: str) -> str:
    """`path` when it is a plain path of this dashboard, else "/": a redirect to `//evil.example/` or
    `/\\evil.example` would leave the site, and control characters would break the header."""
    return path if _LOCAL_PATH.fullmatch(path) else "/"


def csrf_ok(cookie: str | None, given: str | None) -> bool:
    """The form's (or header's) token equals the cookie's: what a route checks before changing anything."""
    return bool(cookie) and bool(given) and _same(str(given), str(cookie))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001  (a malformed Cookie header counts as no cookies)
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _origin_of(referer: str) -> str:
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _refuse(send: Any, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Any, location: str, *, cookie: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
