"""Absolute URLs for mails and jobs, built from BASE_URL (no request needed), and the
templates' cached links."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, request


def external_url(endpoint: str, **values) -> str:
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                       url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


_MAX_CACHED_LINKS = 2048


def install_link_cache(app) -> None:
    """Templates' `url_for`: a link without values (the menu, "Download my data") is built
    once per process rather than on every page (some 5 µs each; 25 of the 36 links of "Mina
    uppgifter" are such). The cache is keyed by the request's SCRIPT_NAME, the one thing besides
    the endpoint that such a relative link depends on here (no subdomains or host matching),
    and bounded. Links with values, relative endpoints (".index") and links built outside a
    request go to Flask's `url_for` as before; an app with url_defaults keeps it altogether
    (its links may depend on the request in ways this cache does not know)."""
    if any(app.url_default_functions.values()):
        return
    build = app.url_for
    built: dict[tuple[str, str], str] = {}

    def url_for(endpoint: str, **values) -> str:
        if values or endpoint[:1] == "." or not has_request_context():
            return build(endpoint, **values)
        key = (endpoint, request.environ.get("SCRIPT_NAME", ""))
        link = built.get(key)
        if link is None:
            link = build(endpoint)
            if len(built) < _MAX_CACHED_LINKS:
                built[key] = link
        return link

    url_for.cache = built
    app.jinja_env.globals["url_for"] = url_for
