"""Counting the SQL statements one request issues (the N+1 guard of tests/test_query_counts.py).

A `before_cursor_execute` listener on the engine sees every statement the request sends,
whichever connection it uses. The test isolation in conftest.py runs each request inside a
SAVEPOINT of an outer transaction; those SAVEPOINT / RELEASE / ROLLBACK TO statements are the
harness's, not the page's (production runs a plain transaction), so they are not counted.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import event

_HARNESS = re.compile(r"\s*(SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO\s+SAVEPOINT)\b",
                      re.IGNORECASE)


@dataclass
class StatementLog:
    """The statements seen while counting, in order (harness statements left out)."""

    statements: list[str] = field(default_factory=list)
    parameters: list = field(default_factory=list)  # as the driver got them, per statement

    @property
    def count(self) -> int:
        return len(self.statements)

    def describe(self) -> str:
        """One numbered line per statement, shortened: for assertion messages."""
        return "\n".join(f"{n:3d}. {' '.join(sql.split())[:160]}"
                         for n, sql in enumerate(self.statements, 1))


@contextmanager
def count_statements(engine: sa.Engine):
    """Count the statements sent through `engine` inside the `with` block."""
    log = StatementLog()

    def _seen(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if not _HARNESS.match(statement):
            log.statements.append(statement)
            log.parameters.append(parameters)

    event.listen(engine, "before_cursor_execute", _seen)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", _seen)


class QueryCounter:
    """Runs one test-client request and returns (response, statements it issued)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, client, path: str, **kwargs):
        with count_statements(self.engine) as log:
            response = client.get(path, **kwargs)
            response.get_data()  # a streamed body would run its queries only when read
        return response, log
