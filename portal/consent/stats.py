"""Anonymous page statistics: views per day and route pattern, counted only with consent.

A row holds a date, a route pattern (``/texter/<int:text_id>``, never the concrete path)
and a number: no user, no address, no identifier of any kind.
"""
from __future__ import annotations

import logging
from contextlib import suppress
from datetime import date, timedelta

import sqlalchemy as sa
from flask import request
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.wrappers import Response

from portal.clock import STOCKHOLM, now
from portal.consent.models import DailyPageView, Purpose
from portal.db import db

log = logging.getLogger(__name__)
_ROUTE_LENGTH = 200  # the column's size


def stockholm_today() -> date:
    """Today's date in Sweden (the day a view is counted under)."""
    return now().astimezone(STOCKHOLM).date()


def record_page_view(response: Response) -> Response:
    """After-request hook: count this page view if the visitor allowed statistics."""
    try:
        route = _countable_route(response)
        if route is not None and _statistics_allowed():
            count_view(stockholm_today(), route)
    except Exception:  # counting must never break the page
        log.warning("page view not counted", exc_info=True)
        with suppress(Exception):
            db.session.rollback()
    return response


def _countable_route(response: Response) -> str | None:
    """The route pattern of a successful GET of a page; None for anything not to count."""
    rule = request.url_rule
    if rule is None or request.method != "GET" or not 200 <= response.status_code < 300:
        return None
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return None
    return rule.rule[:_ROUTE_LENGTH]


def _statistics_allowed() -> bool:
    from portal.consent.cookies import current_choice  # cookies.py registers this hook

    from flask_login import current_user

    from portal.auth.models import AccountStatus

    if current_user.is_authenticated and current_user.status != AccountStatus.ACTIVE:
        return False  # a restricted account's use is not processed for statistics
    choice = current_choice()
    return bool(choice and choice.get(Purpose.COOKIES_STATISTICS))


def count_view(day: date, route: str) -> None:
    """Add one view to (day, route) in a short transaction of its own."""
    session = db.session()
    # The view has committed its work; whatever is left open would be rolled back at
    # teardown anyway. Ending it now keeps the count from committing someone else's changes
    # (and, on SQLite, from waiting on the request's own write lock). A transaction that only
    # read is committed instead (see Database.end_read_only), which is the same to the data.
    db.end_read_only()
    if session.in_transaction():
        session.rollback()
    session.execute(_upsert(session.get_bind().dialect.name, day, route))
    session.commit()


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}  # the two we support


def _upsert(dialect: str, day: date, route: str):
    """INSERT … ON CONFLICT DO UPDATE for the supported databases (KeyError otherwise)."""
    table = DailyPageView.__table__
    stmt = _INSERTS[dialect](table).values(day=day, route=route, views=1)
    return stmt.on_conflict_do_update(index_elements=[table.c.day, table.c.route],
                                      set_={"views": table.c.views + 1})


def page_view_totals(days: int = 30) -> list[tuple[str, int]]:
    """Views per route over the last `days` days (today included), most viewed first."""
    if days < 1:
        raise ValueError("days must be at least 1")
    since = stockholm_today() - timedelta(days=days - 1)
    total = sa.func.sum(DailyPageView.views).label("views")
    rows = db.session.execute(
        sa.select(DailyPageView.route, total)
        .where(DailyPageView.day >= since)
        .group_by(DailyPageView.route)
        .order_by(total.desc(), DailyPageView.route)
    ).all()
    return [(route, int(views)) for route, views in rows]
