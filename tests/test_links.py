"""portal.urls.install_link_cache: templates' links without values, built once per process."""
from __future__ import annotations

from flask import Flask, render_template_string

from portal import urls

PAGE = "{{ url_for('exports.index') }} {{ url_for('texts.show', text_id=7) }} {{ url_for('pages.home') }}"


def _links(app, script_name: str = "") -> str:
    with app.test_request_context("/", base_url="http://localhost" + script_name):
        return render_template_string(PAGE)


def test_links_are_what_flask_builds_for_every_endpoint_without_arguments(app):
    cached = app.jinja_env.globals["url_for"]
    assert getattr(cached, "__self__", None) is not app  # the cache is installed
    plain = [rule.endpoint for rule in app.url_map.iter_rules()
             if not rule.arguments and "GET" in (rule.methods or ())]
    assert len(plain) > 30
    for script_name in ("", "/portal"):
        with app.test_request_context("/", base_url="http://localhost" + script_name):
            for _ in range(2):  # built, then from the cache
                links = [cached(e) for e in plain]
                assert links == [app.url_for(e) for e in plain]
                assert all(link.startswith(script_name + "/") for link in links)


def test_a_link_follows_the_script_name_and_links_with_values_are_built_each_time(app):
    assert _links(app) == "/mina-uppgifter/export /texter/7 /"
    assert _links(app, "/portal") == "/portal/mina-uppgifter/export /portal/texter/7 /portal/"
    assert _links(app) == "/mina-uppgifter/export /texter/7 /"


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(urls, "_MAX_CACHED_LINKS", 3)
    small = Flask(__name__)
    small.add_url_rule("/a", "a", lambda: "")
    urls.install_link_cache(small)
    url_for = small.jinja_env.globals["url_for"]
    for n in range(10):
        with small.test_request_context("/", base_url=f"http://localhost/p{n}"):
            assert url_for("a") == f"/p{n}/a"
    assert len(url_for.cache) == 3


def test_an_app_with_url_defaults_keeps_flasks_url_for():
    other = Flask(__name__)
    other.url_defaults(lambda endpoint, values: values.setdefault("lang", "sv"))
    urls.install_link_cache(other)
    assert other.jinja_env.globals["url_for"].__self__ is other
