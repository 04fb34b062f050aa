"""portal.feeds (several newest-first lists in one UNION ALL) and how a read-only request ends."""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal import feeds
from portal.account.services import MY_DATA_FEEDS, NEWEST, gather_my_data
from portal.auth.models import LoginEvent
from portal.clock import now
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.db import Database, db, make_engine
from portal.requests.models import RequestKind, RequestStatus, RightsRequest
from portal.texts.models import Text, TextKind
from tests.conftest import PG_URL, make_user

OWNER = sa.bindparam("owner")

TEXTS = feeds.Feed("texts", {"id": Text.id, "title": Text.title, "kind": Text.kind,
                             "shared": Text.shared_with_coach, "at": Text.updated_at},
                   (Text.user_id == OWNER,), (Text.updated_at.desc(), Text.id.desc()), 3)
LOGINS = feeds.Feed("logins", {"at": LoginEvent.at, "ok": LoginEvent.succeeded,
                               "browser": LoginEvent.browser},
                    (LoginEvent.user_id == OWNER,), (LoginEvent.id.desc(),), 2)
REQUESTS = feeds.Feed("requests", {"reference": RightsRequest.reference,
                                   "due_on": RightsRequest.due_on},
                      (RightsRequest.user_id == OWNER,), (RightsRequest.id,))  # all, oldest first
FEEDS = (TEXTS, LOGINS, REQUESTS)


def _world():
    """Two users with texts, logins and requests; the texts' times out of id order."""
    start = now() - timedelta(days=30)
    owners = []
    for n, email in enumerate(("ada@example.se", "bo@example.se")):
        user = make_user(email)
        for i, days in enumerate((5, 1, 9, 3, 7)):
            db.session.add(Text(user_id=user.id, title=f"<b>{email} {i}</b>", kind=TextKind.CV,
                                body="x", shared_with_coach=i % 2 == 0,
                                updated_at=start + timedelta(days=days)))
        for i in range(3):
            db.session.add(LoginEvent(user_id=user.id, at=start + timedelta(hours=i),
                                      succeeded=i != 1, ip_prefix="10.0.0.0/24",
                                      browser=f"b{n}{i}"))
        for i in range(2):
            db.session.add(RightsRequest(reference=f"R-{n}-{i}", user_id=user.id,
                                         kind=RequestKind.OBJECTION, status=RequestStatus.RECEIVED,
                                         due_on=date(2027, 1, 10 + i)))
        owners.append(user)
    db.session.flush()
    return owners


def test_each_feed_is_its_own_query_in_one_statement(ctx):
    ada, bo = _world()
    got = feeds.newest(FEEDS, owner=ada.id)
    for feed in FEEDS:  # the same rows as the feed asked for on its own, in its order
        alone = sa.select(*feed.fields.values()).where(*feed.where).order_by(*feed.order_by)
        if feed.limit:
            alone = alone.limit(feed.limit)
        expected = [tuple(row) for row in db.session.execute(alone, {"owner": ada.id})]
        assert [tuple(row) for row in got[feed.name]] == expected, feed.name
    assert [t.title for t in got["texts"]] == ["<b>ada@example.se 2</b>",
                                               "<b>ada@example.se 4</b>",
                                               "<b>ada@example.se 0</b>"]
    assert [r.reference for r in got["requests"]] == ["R-0-0", "R-0-1"]
    # values come back typed as the columns are: aware datetimes, dates, flags, enum values
    text, request = got["texts"][0], got["requests"][0]
    assert text.at.tzinfo is not None and text.shared is True and text.kind == TextKind.CV
    assert request.due_on == date(2027, 1, 10)
    assert got["logins"][0].ok is True and got["logins"][1].ok is False
    # another owner's rows never appear
    assert all("bo@" not in t.title for t in got["texts"])
    assert [t.title for t in feeds.newest(FEEDS, owner=bo.id)["texts"]][0].startswith("<b>bo@")


def test_an_owner_with_nothing_gets_empty_lists(ctx):
    assert feeds.newest(FEEDS, owner=-1) == {"texts": [], "logins": [], "requests": []}


def test_every_parameter_is_needed_and_no_other_is_taken(ctx):
    with pytest.raises(KeyError, match="owner"):
        feeds.newest(FEEDS)
    with pytest.raises(KeyError, match="owner"):
        feeds.newest(FEEDS, owner=1, other=2)
    # None is a value: compared with "=", it matches nothing (as SQL's NULL does)
    assert feeds.newest(FEEDS, owner=None) == {"texts": [], "logins": [], "requests": []}


def test_a_time_parameter_is_converted_as_its_column_would_convert_it(ctx):
    """An aware datetime goes to the database as naive UTC (portal.db.UTCDateTime): the same
    instant given in Stockholm time or in UTC selects the same rows."""
    ada, _ = _world()
    since = sa.bindparam("since", type_=Text.updated_at.type)
    recent = feeds.Feed("recent", {"title": Text.title},
                        (Text.user_id == OWNER, Text.updated_at > since), (Text.id,))
    # half an hour before the text of day 5: read as local time, the cut would pass it
    cut = min(t.updated_at for t in db.session.scalars(
        sa.select(Text).where(Text.user_id == ada.id, Text.title.like("% 0</b>")))) \
        - timedelta(minutes=30)
    stockholm = cut.astimezone(ZoneInfo("Europe/Stockholm"))
    titles = [[r.title for r in feeds.newest((recent,), owner=ada.id, since=moment)["recent"]]
              for moment in (cut, stockholm)]
    assert titles[0] == titles[1] == ["<b>ada@example.se 0</b>", "<b>ada@example.se 2</b>",
                                      "<b>ada@example.se 4</b>"]


def test_a_column_without_a_slot_kind_is_refused_when_the_layout_is_built(ctx):
    odd = feeds.Feed("odd", {"blob": sa.literal(b"x", sa.LargeBinary())}, (), ())
    with pytest.raises(TypeError, match="no feed slot"):
        feeds.newest((odd,))


@pytest.mark.parametrize("name", ["x'; DROP TABLE users; --", "Texts", "", "with space"])
def test_a_feed_name_must_be_a_plain_identifier(name):
    with pytest.raises(ValueError, match="plain identifier"):
        feeds.Feed(name, {"id": Text.id}, (), ())


def test_my_data_shows_the_five_newest_of_each_category_and_the_current_choice(ctx):
    user = make_user()
    base = now() - timedelta(days=3)
    # offers chosen once, long ago; then the newsletter toggled often (events are appended)
    db.session.add(ConsentEvent(user_id=user.id, purpose=Purpose.OFFERS, granted=True,
                                source=ConsentSource.SETTINGS, at=base - timedelta(days=1)))
    db.session.flush()
    for i in range(NEWEST + 3):
        db.session.add(ConsentEvent(user_id=user.id, purpose=Purpose.NEWSLETTER,
                                    granted=i % 2 == 1, source=ConsentSource.SETTINGS,
                                    at=base + timedelta(minutes=i)))
        db.session.flush()
    data = gather_my_data(user)
    assert len(data.marketing_events) == NEWEST
    assert all(e.purpose == Purpose.NEWSLETTER for e in data.marketing_events)
    # the offers choice is older than the five newest events and still the current one
    assert data.marketing == {Purpose.NEWSLETTER: True, Purpose.OFFERS: True}
    assert data.cookie_events == [] and data.organisation is None
    assert data.text_count == 0 and data.session_count == 0
    assert {f.name for f in MY_DATA_FEEDS} >= {"counts", "organisation", "latest_texts"}


# --- how a request's transaction ends ---------------------------------------------------------

@pytest.fixture
def own_database(database_url):
    """A Database of its own on the test database, outside the tests' outer transaction, so
    COMMIT and ROLLBACK are real."""
    if not PG_URL.startswith("postgres"):
        pytest.skip("psycopg's prepared statements: PostgreSQL only")
    database = Database()
    database.engine = make_engine(database_url)
    database.factory.configure(bind=database.engine)
    ends = []
    sa.event.listen(database.engine, "commit", lambda conn: ends.append("commit"))
    sa.event.listen(database.engine, "rollback", lambda conn: ends.append("rollback"))
    yield database, ends
    database.session.remove()
    database.engine.dispose()


def test_a_read_only_transaction_ends_with_commit_and_keeps_prepared_statements(own_database):
    database, ends = own_database
    for _ in range(6):  # psycopg prepares a statement at its fifth execution
        database.session.execute(sa.text("SELECT count(*) FROM users WHERE id > :n"), {"n": 0})
    raw = database.session.connection().connection.dbapi_connection
    prepared = set(raw._prepared._names)
    assert prepared, "psycopg did not prepare the repeated statement"
    database.end_read_only()
    database.session.remove()
    assert ends == ["commit"]
    assert set(raw._prepared._names) == prepared  # a ROLLBACK would have dropped them


def test_a_transaction_that_wrote_is_never_committed_by_the_teardown(own_database):
    database, ends = own_database
    database.session.execute(sa.text("CREATE TEMP TABLE feeds_probe (x int)"))
    database.session.execute(sa.text("INSERT INTO feeds_probe VALUES (1)"))
    database.end_read_only()
    assert database.session().in_transaction()  # left for remove() to roll back
    database.session.remove()
    assert ends == ["rollback"]
    assert database.session.execute(
        sa.text("SELECT to_regclass('pg_temp.feeds_probe')")).scalar() is None


@pytest.mark.parametrize("write", [
    "UPDATE users SET name = name WHERE id < 0",
    "WITH gone AS (DELETE FROM users WHERE id < 0 RETURNING id) SELECT count(*) FROM gone",
    "  insert into users (id) select 1 where false",
])
def test_any_statement_but_a_select_counts_as_a_write(own_database, write):
    database, ends = own_database
    database.session.execute(sa.text("SELECT 1"))
    database.session.execute(sa.text(write))
    database.end_read_only()
    database.session.remove()
    assert ends == ["rollback"]


def test_pending_objects_are_not_flushed_by_the_teardown(own_database):
    database, ends = own_database
    database.session.execute(sa.text("SELECT 1"))
    database.session.add(Text(user_id=-1, title="never", kind=TextKind.CV, body=""))
    database.end_read_only()  # a commit would flush the text (and fail on the foreign key)
    database.session.remove()
    assert ends == ["rollback"]
