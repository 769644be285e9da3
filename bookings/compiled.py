"""Querysets compiled to SQL once, then run with new values: for the hottest reads, where
building and compiling a queryset costs the request more than the database takes to run it.

``CompiledQuery(build)`` wraps a function that takes values by keyword and returns a queryset.
For each *shape* of values (which are None, how long each list is, the integers such as a
page's limit, which Django writes into the SQL) it calls ``build`` once with stand-ins, compiles
the queryset, and notes which SQL parameter is which value. Later calls of that shape only
swap in the values and run the SQL on a copy of that compiler, which turns rows into model
instances as a queryset does (``.only()`` fields deferred, annotations set, the database's
converters applied). ``build`` must use strings and datetimes only as query parameters: a
value that shapes the SQL is an integer or None. On PostgreSQL the query's own constants (a
status list, ``EXISTS``'s ``SELECT 1``) are written into the SQL as literals, so that the
statement, once prepared, is planned once (``_written_in``). With ``records=True`` the rows
come back as read-only named tuples of the selected fields then the annotations (converters
applied) instead of model instances: what a read that only renders or compares its rows needs,
at a fraction of a model's cost per row. A JSON field's text is parsed with orjson (Django's
converter, ``json.loads``, was a fifth of a list page's CPU: two per row), falling back to
Django's for anything orjson refuses.
tests/bookings/test_compiled_queries.py checks each compiled read against its queryset.
"""

import re
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import JSONField, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from psycopg.sql import Literal

_STAND_IN_BASE = datetime(2, 1, 1, tzinfo=UTC)


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet], *, records: bool = False):
        self._build = build
        self._records = records
        self._compiled: dict[tuple, tuple[SQLCompiler | None, str, list]] = {}

    def __call__(self, using: str = DEFAULT_DB_ALIAS, **values) -> list:
        shape = (using, *sorted((name, _shape(value)) for name, value in values.items()))
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compiled[shape] = self._compile(using, values)
        if compiled is _NOTHING:
            return []  # a filter that can match nothing (``status__in=[]``)
        connection = connections[using]  # this thread's
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, tuple(slot(values) for slot in compiled.slots))
            rows = cursor.fetchall()
        if self._records:
            return compiled.records(rows, connection)
        return compiled.models(rows, using, connection)

    def _compile(self, using: str, values: dict) -> "_Compiled":
        counter = iter(range(1, 1_000_000))
        stand_ins: dict[Any, tuple[Callable[[dict], Any], Callable]] = {}

        def stand_in(name: str, value, index: int | None = None):
            if isinstance(value, list):
                return [stand_in(name, item, i) for i, item in enumerate(value)]
            if isinstance(value, str):
                marker = f"\x1fv{next(counter)}\x1f"
            elif isinstance(value, datetime):
                marker = _STAND_IN_BASE + timedelta(microseconds=next(counter))
            else:
                return value  # None, an integer: part of the shape, written into the SQL
            slot = (
                (lambda values: values[name])
                if index is None
                else (lambda values: values[name][index])
            )
            # As the parameter will read (SQLite's backend turns datetimes into text).
            adapt = _adapter(connection, value)
            stand_ins[adapt(marker)] = (slot, adapt)
            return marker

        connection = connections[using]
        queryset = self._build(**{name: stand_in(name, value) for name, value in values.items()})
        compiler = queryset.query.get_compiler(using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return _NOTHING
        slots, used, constants = [], set(), {}
        for position, param in enumerate(params):
            found = stand_ins.get(param)
            if found is None:
                constant = _plain(param)
                if constant is not None and connection.vendor == "postgresql":
                    constants[position] = constant
                    continue
                slots.append(lambda _values, constant=param: constant)
                continue
            used.add(param)
            slot, convert = found
            slots.append(lambda values, slot=slot, convert=convert: convert(slot(values)))
        if used != set(stand_ins):
            raise ValueError("A value was transformed before its use as a query parameter.")
        if constants:
            sql = _written_in(sql, constants, connection)
        return _Compiled(compiler, sql, slots)


class _Compiled:
    """One shape's SQL, where each value goes, and how its rows become model instances: what
    Django's ``ModelIterable`` works out on every run, worked out once."""

    def __init__(self, compiler: SQLCompiler, sql: str, slots: list[Callable]):
        self.sql, self.slots = sql, slots
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        self.first = klass_info["select_fields"][0]
        self.last = klass_info["select_fields"][-1] + 1
        self.names = [
            column[0].target.attname for column in compiler.select[self.first : self.last]
        ]
        self.annotations = list(compiler.annotation_col_map.items())
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        # The database's and the fields' converters (a JSON field's loads): a list per column.
        self.converters = [
            (position, [_faster(convert) for convert in converters], expression)
            for position, (converters, expression) in compiler.get_converters(fields).items()
        ]

        self.record = None  # made on first use

    def _converted(self, row: tuple, connection):
        if not self.converters:
            return row
        row = list(row)
        for position, converters, expression in self.converters:
            value = row[position]
            for convert in converters:
                value = convert(value, expression, connection)
            row[position] = value
        return row

    def records(self, rows: list, connection) -> list[tuple]:
        if self.record is None:
            fields = self.names + [name for name, _position in self.annotations]
            self.record = namedtuple(f"{self.model.__name__}Record", fields)
        make, first, last = self.record._make, self.first, self.last
        if not self.annotations:
            return [make(self._converted(row, connection)[first:last]) for row in rows]
        positions = [position for _name, position in self.annotations]
        records = []
        for row in rows:
            row = self._converted(row, connection)
            records.append(make([*row[first:last], *(row[position] for position in positions)]))
        return records

    def models(self, rows: list, using: str, connection) -> list[Model]:
        model, first, last, names = self.model, self.first, self.last, self.names
        instances = []
        for row in rows:
            row = self._converted(row, connection)
            instance = model.from_db(using, names, row[first:last])
            for name, position in self.annotations:
                setattr(instance, name, row[position])
            instances.append(instance)
        return instances


_NOTHING = object()


# 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float where
# json.loads keeps an int (PostgreSQL writes 1.5e300 in full, 301 digits).
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _faster(convert: Callable) -> Callable:
    """A JSON field's ``from_db_value`` (no custom decoder) parsing with orjson first: the same
    Python values as ``json.loads`` for RFC 8259 JSON whose numbers fit in 18 digits in a row;
    Django's own converter for the rest (None, long numbers, invalid text)."""
    field = getattr(convert, "__self__", None)
    if getattr(convert, "__func__", None) is not JSONField.from_db_value or field.decoder:
        return convert

    def from_db_value(value, expression, connection):
        if value == "{}":  # most bookings' custom fields and metadata: a new dict each time
            return {}
        if type(value) is str and _LONG_DIGITS.search(value) is None:
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return convert(value, expression, connection)

    return from_db_value


_PLACEHOLDER = re.compile(r"%[s%]")


def _written_in(sql: str, constants: dict[int, str | int], connection) -> str:
    """``sql`` with the parameters at these positions written in as literals. A constant of
    the query (the active statuses, ``EXISTS``'s ``SELECT 1``) bound as a parameter hides it
    from a prepared statement's generic plan: PostgreSQL cannot then prove that ``status IN
    ($5, $6, $7, $8)`` implies a partial index's ``status IN ('DRAFT', …)``, plans the
    statement anew at every execution instead (routing's hosts: 1.5 ms of planning for
    0.15 ms of work), and the statement is never planned once. Written in, it is."""
    connection.ensure_connection()
    raw = connection.connection
    positions = iter(range(1_000_000))

    def replaced(match: re.Match) -> str:
        if match[0] == "%%":
            return "%%"
        position = next(positions)
        if position not in constants:
            return "%s"
        # The SQL still goes through the driver's %-formatting: a % in a literal is doubled.
        return Literal(constants[position]).as_string(raw).replace("%", "%%")

    return _PLACEHOLDER.sub(replaced, sql)


def _plain(constant) -> str | int | None:
    """A constant parameter as a plain str or int (a choice's value, psycopg's ``Int4``), or
    None when it is anything else."""
    if isinstance(constant, Enum):
        constant = constant.value
    if isinstance(constant, str):
        return str(constant)
    if isinstance(constant, int) and not isinstance(constant, bool):
        return int(constant)
    return None


def _adapter(connection, value) -> Callable:
    """How the backend turns such a value into a query parameter."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value
    return lambda value: value


def _shape(value):
    if value is None:
        return None
    if isinstance(value, list):
        return ("list", len(value))
    if isinstance(value, int):
        return ("int", value)
    return type(value).__name__
