"""Run the whole suite the way `make test` promises: on PostgreSQL and again on the embedded
SQLite default, browser tests included in both.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server's `test` database; a fresh
database is created and dropped per run). Under CI=true a missing PostgreSQL is a failure;
elsewhere the PostgreSQL pass is skipped with a loud message.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_answers(url: str) -> bool:
    import sqlalchemy as sa

    from portal.db import normalise_url

    try:
        engine = sa.create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception as exc:  # noqa: BLE001 - report any reason
        print(f"PostgreSQL svarar inte på {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return False


def pytest(label: str, env: dict, *args: str) -> int:
    print(f"\n=== {label} ===", flush=True)
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
    print(f"=== {label}: exit {code} after {time.monotonic() - started:.0f} s ===", flush=True)
    return code


def main() -> int:
    extra = sys.argv[1:]
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PORTAL_ENV"}}
    pg_url = os.environ.get("TEST_DATABASE_URL", PG_DEFAULT)
    results = []
    if postgres_answers(pg_url):
        results.append(pytest("PostgreSQL: hela sviten", {**base, "TEST_DATABASE_URL": pg_url},
                              "-q", *extra))
    elif os.environ.get("CI"):
        print("CI=true men ingen PostgreSQL: avbryter.", file=sys.stderr)
        return 1
    else:
        print("\n*** PostgreSQL saknas: kör bara SQLite-passet. ***\n", file=sys.stderr)
    sqlite_env = {k: v for k, v in base.items() if k != "TEST_DATABASE_URL"}
    results.append(pytest("SQLite: hela sviten", sqlite_env, "-q", *extra))
    # pytest exits 5 when no test ran: that is a failure here, never a pass.
    return max(results) if any(results) else 0


if __name__ == "__main__":
    sys.exit(main())
