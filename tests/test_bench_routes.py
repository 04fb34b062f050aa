"""The benchmark's hello-world route exists only when PORTAL_BENCH_ROUTES=1 is set."""
from __future__ import annotations

from portal import create_app
from tests.conftest import app_config

BENCH_PATH = "/bench/hello"


def _bench_app(database_url, smtp_server):
    return create_app(app_config(database_url, smtp_server, "http://portal.test"))


def test_bench_route_absent_by_default(client, monkeypatch):
    monkeypatch.delenv("PORTAL_BENCH_ROUTES", raising=False)
    assert client.get(BENCH_PATH).status_code == 404


def test_bench_route_absent_for_other_values(database_url, smtp_server, monkeypatch):
    for value in ("", "0", "true", "yes"):
        monkeypatch.setenv("PORTAL_BENCH_ROUTES", value)
        app = _bench_app(database_url, smtp_server)
        assert "bench_hello" not in app.view_functions
        assert app.test_client().get(BENCH_PATH).status_code == 404


def test_bench_route_runs_through_the_same_hooks(database_url, smtp_server, monkeypatch):
    monkeypatch.setenv("PORTAL_BENCH_ROUTES", "1")
    response = _bench_app(database_url, smtp_server).test_client().get(BENCH_PATH)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "Hello, world\n"
    # The after_request hook of every page ran: security headers and no caching.
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response.headers
