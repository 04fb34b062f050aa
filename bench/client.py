"""A small browser for the benchmarks: one keep-alive connection, cookies, CSRF, logins.

Standard library only (http.client): it talks to gunicorn as the TLS-terminating proxy in
front of it would, with `X-Forwarded-Proto: https` and the client's address in
`X-Forwarded-For` (the app runs with TRUSTED_PROXIES=1), so the app sets and accepts its
`Secure` `__Host-` cookies exactly as in production.
"""
from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"'
                     r'|value="([^"]+)"[^>]*?name="csrf_token"')
IDLE_RECONNECT = 4.0  # gunicorn closes idle keep-alive connections after 5 s (keepalive)


class LoginFailed(RuntimeError):
    """The portal did not log the session in (wrong password, code refused, rate limit)."""


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise LookupError("no CSRF token on the page")
    return match.group(1) or match.group(2)


class Browser:
    """One browser session against the portal (not thread-safe: one per thread)."""

    def __init__(self, port: int, client_ip: str = "192.0.2.10", timeout: float = 30.0,
                 host: str = "127.0.0.1") -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.client_ip = client_ip
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    # -- transport --

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None or time.monotonic() - self._last_used > IDLE_RECONNECT:
            self.close()
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def proxy_headers(self) -> dict[str, str]:
        """What the reverse proxy adds to every request."""
        return {"X-Forwarded-Proto": "https", "X-Forwarded-For": self.client_ip}

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> Response:
        """One request; a GET on a connection the server closed meanwhile is sent again."""
        all_headers = {**self.proxy_headers(), "User-Agent": "Mozilla/5.0 (bench) Firefox/128.0",
                       "Accept-Language": "sv-SE,sv;q=0.9", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = self.cookie_header()
        for attempt in (1, 2):
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=all_headers)
                raw = conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if method != "GET" or attempt == 2:
                    raise
                continue
            except BaseException:  # a timeout or anything else: never reuse that connection
                self.close()
                raise
            seconds = time.perf_counter() - started
            self._last_used = time.monotonic()
            if raw.getheader("connection", "").lower() == "close":
                self.close()
            self._store_cookies(raw.msg.get_all("Set-Cookie") or [])
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data,
                            seconds)
        raise AssertionError("unreachable")

    def _store_cookies(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                gone = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                if gone or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_form(self, path: str, fields: dict, form_page: str | None = None) -> Response:
        """Submit a form as a browser does: the CSRF token from the page, and a same-origin
        Referer (Flask-WTF checks it strictly on HTTPS)."""
        from urllib.parse import urlencode

        page = self.get(form_page or path)
        data = {"csrf_token": csrf_token(page.text), **fields}
        return self.request("POST", path, urlencode(data).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded",
                             "Referer": f"https://{self.host}:{self.port}{form_page or path}"})

    # -- logins --

    def login(self, email: str, password: str, totp_secret: str | None = None) -> None:
        """Log in (a DPO gives the TOTP code from the secret next); LoginFailed otherwise."""
        response = self.post_form("/logga-in", {"email": email, "password": password})
        if response.status != 302:
            raise LoginFailed(f"login answered {response.status}")
        if totp_secret is None:
            return
        if "/logga-in/kod" not in response.location:
            raise LoginFailed(f"no code step after the password ({response.location})")
        self._give_code(totp_secret)

    def _give_code(self, secret: str) -> None:
        """A code is never accepted twice for the same 30-second step: wait for a new one
        once if the current step was used already (e.g. by the previous run)."""
        import pyotp

        for attempt in (1, 2):
            code = pyotp.TOTP(secret).now()
            response = self.post_form("/logga-in/kod", {"code": code})
            if response.status == 302:
                return
            if attempt == 1:
                time.sleep(30.5 - time.time() % 30)
        raise LoginFailed(f"the TOTP code was refused ({response.status})")
