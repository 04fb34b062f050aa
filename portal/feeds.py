"""Several short lists of one owner's rows, newest first, in one statement.

A page such as "Mina uppgifter" shows the latest few rows of many tables. Asking for each list
on its own costs a round trip and the ORM's per-statement work every time (fourteen of them
made up most of that page's time); here each list is a `Feed` and all of them become one
`UNION ALL` whose rows come back as light named tuples with the attribute names the templates
already use.

The branches of a `UNION ALL` must agree column by column, so every field is placed in a slot
of its kind (text, integer, flag, time, date): the first text field of each feed in text slot
0, and so on. A feed leaves the slots it does not need NULL. Each branch numbers its rows in its
own order (`row_number()`), so the order survives the union. The statement is built once per
tuple of feeds, with bound parameters for the owner (`sa.bindparam`), and compiled once per
database dialect: a request sends the compiled SQL with `exec_driver_sql` and converts the few
values itself. Through `Session.execute` SQLAlchemy would walk the whole statement (on "Mina
uppgifter" sixteen branches, hundreds of elements) to compute its cache key on every
execution, which cost more than running it.
"""
from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from portal.db import UTCDateTime, db

# Each kind of value has one SQL type in the union, so the result is converted alike on
# SQLite and PostgreSQL (UTCDateTime gives back aware datetimes on both).
_KINDS: dict[type, sa.types.TypeEngine] = {
    str: sa.String(), int: sa.Integer(), bool: sa.Boolean(), datetime: UTCDateTime(),
    date: sa.Date(),
}


def _kind(column: ColumnElement) -> type:
    sql_type = column.type
    if isinstance(sql_type, sa.types.TypeDecorator):
        sql_type = sql_type.impl_instance
    python_type = sql_type.python_type
    for kind in (bool, datetime, date, int, str):  # bool before int, datetime before date
        if issubclass(python_type, kind):
            return kind
    raise TypeError(f"no feed slot for a column of type {column.type!r}")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the layout cache
class Feed:
    """The newest `limit` rows (all if None) of `fields`' table that match `where` (criteria
    with `sa.bindparam`s, whose values `newest` takes). Fields may also be scalar subqueries,
    with no `where` or `order_by`: one row of counts."""

    name: str
    fields: dict[str, ColumnElement]
    where: tuple[ColumnElement, ...]
    order_by: tuple[ColumnElement, ...]
    limit: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"a feed's name is a plain identifier, not {self.name!r}")

    @cached_property
    def row_type(self) -> type:
        return namedtuple(f"{self.name.title().replace('_', '')}Row", list(self.fields))


@dataclass
class _Layout:
    """Which slot every field of every feed has, and the width of the union per kind."""

    feeds: tuple[Feed, ...]
    slots: dict[str, list[tuple[type, int]]] = field(default_factory=dict)
    widths: dict[type, int] = field(default_factory=dict)
    # per feed, the index in a result row of each of its fields (after "feed" and "pos")
    columns: dict[str, list[int]] = field(default_factory=dict)
    # per (dialect, driver, paramstyle): the SQL text and its placeholders differ by each
    _compiled: dict[tuple[str, str, str], _Compiled] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for feed in self.feeds:
            used: dict[type, int] = {}
            places = []
            for column in feed.fields.values():
                kind = _kind(column)
                places.append((kind, used.get(kind, 0)))
                used[kind] = used.get(kind, 0) + 1
            self.slots[feed.name] = places
            for kind, count in used.items():
                self.widths[kind] = max(self.widths.get(kind, 0), count)
        offsets, start = {}, 2
        for kind, width in self.widths.items():
            offsets[kind], start = start, start + width
        for feed in self.feeds:
            self.columns[feed.name] = [offsets[kind] + index
                                       for kind, index in self.slots[feed.name]]

    @cached_property
    def statement(self) -> sa.CompoundSelect:
        return sa.union_all(*(self.branch(feed) for feed in self.feeds))

    def branch(self, feed: Feed) -> sa.Select:
        by_place = dict(zip(self.slots[feed.name], feed.fields.values()))
        position = (sa.func.row_number().over(order_by=feed.order_by) if feed.order_by
                    else sa.literal(1, sa.Integer()))  # a feed of one row, e.g. of counts
        # the name as SQL text, not a parameter: one fewer value to bind per branch (names are
        # checked to be plain identifiers)
        columns = [sa.literal_column(f"'{feed.name}'", sa.String()).label("feed"),
                   position.label("pos")]
        for kind, width in self.widths.items():
            for index in range(width):
                column = by_place.get((kind, index))
                value = (sa.type_coerce(column, _KINDS[kind]) if column is not None
                         else sa.cast(sa.null(), _KINDS[kind]))
                columns.append(value.label(f"{kind.__name__}_{index}"))
        query = sa.select(*columns).where(*feed.where).order_by(*feed.order_by)
        if feed.limit is not None:
            query = query.limit(feed.limit)
        # SQLite takes ORDER BY/LIMIT inside a compound statement only in a subquery.
        return sa.select(query.subquery())

    def compiled(self, dialect: sa.Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self, dialect)
        return compiled


class _Compiled:
    """A layout's statement as SQL text of one dialect, with what SQLAlchemy would otherwise
    do at every execution: the parameters' conversion (a `UTCDateTime` to naive UTC), their
    order for positional drivers, and each result column's conversion (SQLite's text to
    datetime, date and bool; naive UTC to aware)."""

    def __init__(self, layout: _Layout, dialect: sa.Dialect) -> None:
        compiled = layout.statement.compile(dialect=dialect)
        self.layout = layout
        self.sql = str(compiled)
        self.names = compiled.positiontup if compiled.positional else None
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("feeds take no expanding (IN) parameters; use OR of equalities")
        # the literal values (limits) are known; the others are the caller's to give
        self.defaults = {name: bind.value for name, bind in compiled.binds.items()
                         if not bind.required}
        self.required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        self.bind_processors = {
            name: processor for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
            is not None}
        # result columns: "feed", "pos", then the slots in the order of layout.widths
        kinds = [kind for kind, width in layout.widths.items() for _ in range(width)]
        processors = [None, None] + [
            _KINDS[kind].dialect_impl(dialect).result_processor(dialect, None) for kind in kinds]
        self.readers = {
            feed.name: (feed.row_type._make,
                        [(index, processors[index]) for index in layout.columns[feed.name]])
            for feed in layout.feeds}

    def parameters(self, values: dict):
        if values.keys() != self.required:
            raise KeyError(f"the feeds take the parameters {sorted(self.required)}, "
                           f"not {sorted(values)}")
        params = {**self.defaults, **values}
        for name, processor in self.bind_processors.items():
            params[name] = processor(params[name])
        return params if self.names is None else tuple(params[name] for name in self.names)

    def unpack(self, rows) -> dict[str, list]:
        result: dict[str, list] = {feed.name: [] for feed in self.layout.feeds}
        for row in sorted(rows, key=lambda r: (r[0], r[1])):
            make, columns = self.readers[row[0]]
            result[row[0]].append(make([row[index] if process is None or row[index] is None
                                        else process(row[index])
                                        for index, process in columns]))
        return result


def newest(feeds: tuple[Feed, ...], **params) -> dict[str, list]:
    """Every feed's rows (in each feed's order) for the values of the bound parameters, from
    one statement."""
    layout = _layouts.get(feeds)
    if layout is None:
        layout = _layouts[feeds] = _Layout(feeds)
    connection = db.session.connection()
    compiled = layout.compiled(connection.dialect)
    return compiled.unpack(connection.exec_driver_sql(compiled.sql,
                                                      compiled.parameters(params)).all())


_layouts: dict[tuple[Feed, ...], _Layout] = {}
