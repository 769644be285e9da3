"""Database specifics: pieces PostgreSQL has and SQLite (development) does not, how each
says a lock was held too long, and a row inserted with its dependents in one statement."""

from datetime import datetime

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import OperationalError, connections, migrations, models
from django.db.models import Func, Model
from django.db.models.sql import InsertQuery


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class PostgresExclusionConstraint(ExclusionConstraint):
    """An exclusion constraint that exists on PostgreSQL and is a no-op elsewhere.

    SQLite has no exclusion constraints; there the same invariant is kept by serialised write
    transactions (``transaction_mode=IMMEDIATE``) and the check in ``bookings.routing``.
    """

    def _is_postgres(self, schema_editor) -> bool:
        return schema_editor.connection.vendor == "postgresql"

    def constraint_sql(self, model, schema_editor):
        return (
            super().constraint_sql(model, schema_editor)
            if self._is_postgres(schema_editor)
            else None
        )

    def create_sql(self, model, schema_editor):
        return (
            super().create_sql(model, schema_editor) if self._is_postgres(schema_editor) else None
        )

    def remove_sql(self, model, schema_editor):
        return (
            super().remove_sql(model, schema_editor) if self._is_postgres(schema_editor) else None
        )

    def validate(self, model, instance, exclude=None, using="default"):
        # Overlaps are checked by the routing service and refused by the database; model
        # validation (admin forms) does not re-run a range query of its own.
        return


class PostgresOnlySQL(migrations.RunSQL):
    """Raw SQL that runs on PostgreSQL and is skipped elsewhere (SQLite in development)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def drop_indexes_concurrently_on_postgres(dropped: dict[str, str]) -> list[migrations.RunSQL]:
    """``DROP INDEX CONCURRENTLY`` of each index named on PostgreSQL (nothing elsewhere), built
    again from its definition (``table (columns)``) when migrating backwards. The migration
    needs ``atomic = False``."""
    return [
        PostgresOnlySQL(
            f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
            reverse_sql=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}",
        )
        for name, definition in dropped.items()
    ]


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL, so a big table keeps taking writes while
    the index builds; a plain ``AddIndex`` elsewhere. Its migration needs ``atomic = False``.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


def is_lock_timeout(exc: OperationalError) -> bool:
    """PostgreSQL's lock_timeout (55P03), or SQLite's busy timeout."""
    return getattr(exc.__cause__, "sqlstate", None) == "55P03" or "database is locked" in str(exc)


def insert_with_rows(row: Model, rows: list[Model], *, using: str, on_conflict: str) -> bool:
    """PostgreSQL: insert ``row`` unless constraint ``on_conflict`` refuses it, and ``rows``
    (unsaved, referring to it) only if it went in: one statement, so all or nothing even
    outside a transaction. True when inserted; each row then has its primary key.

        WITH main AS (INSERT … ON CONFLICT ON CONSTRAINT … DO NOTHING RETURNING id),
             r0 AS (INSERT INTO … SELECT main.id, %s::type, … FROM main RETURNING id), …
        SELECT (SELECT count(*) FROM main), (SELECT id FROM r0), …

    The SQL comes from the models (the ORM compiles the main insert; each row's columns and
    values are its concrete fields', as ``save`` would write them; a row's reference to the
    main row is read from ``main``). A row's values are cast to their columns' types: in a
    SELECT list a parameter has none of its own. The SQL is worked out once per shape (the
    models, which keys are unset, which references are to the main row) and then only the
    values change: the same text each time, which psycopg converts once (it caches statements
    of at most 50 parameters) and the server prepares.
    """
    connection = connections[using]
    dependents = tuple(_dependent_shape(row, dependent) for dependent in rows)
    shape = (using, type(row), on_conflict, dependents)
    plan = _insert_plans.get(shape)
    if plan is None:
        plan = _insert_plans[shape] = _InsertPlan(row, rows, dependents, connection, on_conflict)
    params = plan.params(row, rows, connection)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        inserted, *keys = cursor.fetchone()
    if not inserted:
        return False
    for saved, key in zip([row, *rows], [row.pk, *keys], strict=True):
        saved.pk = key
        saved._state.adding = False
        saved._state.db = using
    return True


def _dependent_shape(row: Model, dependent: Model) -> tuple:
    """A dependent row's model, whether its key is unset, and which of its fields refer to
    ``row`` (their values are read from the main insert)."""
    meta = dependent._meta
    return (
        type(dependent),
        dependent.pk is None,
        tuple(
            field.attname
            for field in meta.local_concrete_fields
            if field.is_relation
            and field.related_model is type(row)
            and getattr(dependent, field.attname) == row.pk
        ),
    )


_insert_plans: dict[tuple, "_InsertPlan"] = {}


class _InsertPlan:
    """One shape's statement, and the fields whose values it takes, in order."""

    def __init__(
        self, row: Model, rows: list[Model], dependents: tuple, connection, on_conflict: str
    ):
        quote = connection.ops.quote_name
        row_meta = row._meta
        self.main_fields = _inserted_fields(row)
        self.main_steps = _insert_steps(self.main_fields, connection)
        main = InsertQuery(type(row))
        main.insert_values(self.main_fields, [row])
        [(main_sql, main_params)] = main.get_compiler(using=connection.alias).as_sql()
        if len(main_params) != len(self.main_fields):  # a value written into the SQL
            raise ValueError("Every value of the main row must be a query parameter.")
        main_key = quote(row_meta.pk.column)
        parts = [
            f"WITH main AS ({main_sql} ON CONFLICT ON CONSTRAINT {quote(on_conflict)}"
            f" DO NOTHING RETURNING {main_key})"
        ]
        self.dependent_steps = []
        for n, (dependent, (_model, _unset, from_main)) in enumerate(
            zip(rows, dependents, strict=True)
        ):
            meta = dependent._meta
            fields = _inserted_fields(dependent)
            columns = ", ".join(quote(field.column) for field in fields)
            values = ", ".join(
                f"main.{main_key}"
                if field.attname in from_main
                else f"%s::{field.cast_db_type(connection)}"
                for field in fields
            )
            table, key = quote(meta.db_table), quote(meta.pk.column)
            insert = f"INSERT INTO {table} ({columns}) SELECT {values} FROM main"  # noqa: S608
            parts.append(f", r{n} AS ({insert} RETURNING {key})")  # names from the models
            self.dependent_steps.append(
                _insert_steps([f for f in fields if f.attname not in from_main], connection)
            )
        selected = ["(SELECT count(*) FROM main)"]
        selected += [
            f"(SELECT {quote(r._meta.pk.column)} FROM r{n})"  # noqa: S608 (names from the models)
            for n, r in enumerate(rows)
        ]
        self.sql = " ".join(parts) + " SELECT " + ", ".join(selected)

    def params(self, row: Model, rows: list[Model], connection) -> list:
        params = _insert_values(row, self.main_steps, connection)
        for dependent, steps in zip(rows, self.dependent_steps, strict=True):
            params += _insert_values(dependent, steps, connection)
        return params


def _inserted_fields(obj: Model) -> list:
    """The columns an insert of ``obj`` writes, as ``save`` does: all but an unset auto key."""
    meta = obj._meta
    return [
        field
        for field in meta.local_concrete_fields
        if not (field is meta.auto_field and obj.pk is None)
    ]


# Fields whose save steps (``pre_save``, ``get_db_prep_save``) give PostgreSQL a value of this
# exact type, or None, as it is: a str stays the str, a bool the bool, an aware datetime the
# datetime (PostgreSQL's ``adapt_datetimefield_value`` is the identity). Not integers: Django
# wraps them in psycopg's Int2/Int4/Int8 for the column's size. Exact classes only: a subclass
# may prepare its values its own way. A foreign key's value is its target field's.
_PASSED_AS_IS = {
    models.CharField: str,
    models.TextField: str,
    models.EmailField: str,
    models.SlugField: str,
    models.BooleanField: bool,
    models.DateTimeField: datetime,
}


def _passed_as_is(field) -> type | None:
    """The type whose values (and None) an insert writes unchanged for ``field``, if any."""
    if type(field) in (models.ForeignKey, models.OneToOneField):
        field = field.target_field
    kind = _PASSED_AS_IS.get(type(field))
    if kind is datetime and (field.auto_now or field.auto_now_add):
        return None  # pre_save sets the time
    return kind


def _insert_steps(fields: list, connection) -> list[tuple]:
    """Each field, its attribute, and the type its values pass as they are (PostgreSQL only)."""
    postgresql = connection.vendor == "postgresql"
    return [
        (field, field.attname, _passed_as_is(field) if postgresql else None) for field in fields
    ]


def _insert_values(obj: Model, steps: list[tuple], connection) -> list:
    """As the ORM's insert prepares each value: the field's pre_save, then its database form;
    a value those steps pass unchanged (``_passed_as_is``) is read as it is
    (tests/bookings/test_insert_values.py compares both on every field of the rows a create
    writes, with values of every type)."""
    values = []
    for field, attname, kind in steps:
        if kind is not None:
            value = getattr(obj, attname)
            if value is None or (
                type(value) is kind and (kind is not datetime or value.tzinfo is not None)
            ):
                values.append(value)
                continue
        values.append(field.get_db_prep_save(field.pre_save(obj, add=True), connection))
    return values
