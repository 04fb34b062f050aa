"""The migrations run down to nothing and up again, and match the models."""
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import portal.models  # noqa: F401
from portal.cli import alembic_config
from portal.db import Base, db


def test_models_and_migrations_agree(ctx):
    conn = db.session.connection()  # the test's own connection (SQLite allows one writer)
    diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(app, tmp_path):
    """On a scratch SQLite database (the test database stays as it is)."""
    from portal import create_app

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    saved_engine, saved_bind = db.engine, db.factory.kw.get("bind")
    try:
        scratch = create_app({"DATABASE_URL": url, "REDIS_URL": app.config["REDIS_URL"]})
        with scratch.app_context():
            cfg = alembic_config()
            command.upgrade(cfg, "head")
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")
        engine = sa.create_engine(url)
        tables = set(sa.inspect(engine).get_table_names())
        engine.dispose()
    finally:  # the shared engine goes back to the test database
        db.engine = saved_engine
        db.factory.configure(bind=saved_bind)
    assert {"users", "texts", "exports", "coach_links", "erasure_cases"} <= tables
