"""Engine, scoped session and the declarative base shared by every feature's models."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def str_enum(enum_cls, name: str, length: int = 32) -> sa.Enum:
    """A StrEnum column stored as its values in a VARCHAR (portable, no native ENUM type)."""
    return sa.Enum(enum_cls, name=name, native_enum=False, length=length,
                   values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Database:
    """Holds the engine and a thread-scoped session; `init_app` binds them to a Flask app."""

    def __init__(self) -> None:
        self.engine: sa.Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.session: scoped_session[Session] = scoped_session(self.factory)

    def init_app(self, app) -> None:
        url = app.config["DATABASE_URL"]
        if self.engine is None or str(self.engine.url) != str(sa.make_url(url)):
            self.engine = make_engine(url)
            self.factory.configure(bind=self.engine)
        app.extensions["portal_db"] = self

        @app.teardown_appcontext
        def _remove_session(exc):  # noqa: ANN001 - Flask signature
            self.end_read_only()
            self.session.remove()

    def end_read_only(self) -> None:
        """COMMIT the session's transaction if it only read, before `remove()` rolls back.

        On PostgreSQL, psycopg deallocates every prepared statement of the connection at a
        ROLLBACK (the objects they name may be gone), so ending each read-only request with one
        makes PostgreSQL plan every statement of every request afresh; "Mina uppgifter" spent
        twice its database time so. A transaction that only read ends alike either way. The
        engine notes every statement that is not a plain SELECT (`_note_writes`); only a
        transaction without one, and with nothing pending in the session, is committed here.
        Anything else (writes a view left uncommitted, an error) is still rolled back by
        `remove()`.
        """
        if not self.session.registry.has():
            return
        session = self.session()
        if (not session.in_transaction() or session.new or session.dirty or session.deleted
                or session.get_bind().dialect.name != "postgresql"):
            return
        try:
            if not session.connection().info.get(WROTE, True):
                session.commit()
        except sa.exc.SQLAlchemyError:
            pass  # the connection is gone or the transaction failed: remove() rolls back


WROTE = "portal_transaction_wrote"


def _note_writes(engine: sa.Engine) -> None:
    """Keep, per connection, whether its current transaction sent anything but a SELECT
    (INSERT, UPDATE, DELETE, DDL, a SAVEPOINT, a CTE: all count as writes)."""

    @event.listens_for(engine, "begin")
    def _transaction_begins(conn):
        conn.info[WROTE] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if statement.lstrip()[:6].upper() != "SELECT":
            conn.info[WROTE] = True


def make_engine(url: str) -> sa.Engine:
    """An engine with pre-ping (survives database restarts) and SQLite made safe for threads."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
            # SAVEPOINTs work (the recipe in SQLAlchemy's SQLite dialect documentation).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE: take the write lock at the start, so a transaction that read first
            # never fails at its first write because another process committed meanwhile
            # (busy_timeout makes the others wait instead).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                              pool_recycle=1800)
    _note_writes(engine)
    return engine


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


db = Database()
