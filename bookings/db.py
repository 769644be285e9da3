"""Database specifics: pieces PostgreSQL has and SQLite (development) does not, and how
each says a lock was held too long."""

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import OperationalError, migrations
from django.db.models import Func


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
