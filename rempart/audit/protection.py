"""The audit tables are append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (PostgreSQL
and SQLite), and on PostgreSQL the application's role is granted INSERT and SELECT only.

The grants are (re)applied after every `migrate` (rempart.audit.apps), once every table exists.
The schema owner could still drop the trigger: that is why checkpoints are signed with a key
outside the database and copied outside it (see rempart.audit.sinks).
"""

from __future__ import annotations

from typing import Any

TABLES = ("audit_event", "audit_event_patient", "audit_link", "audit_checkpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rempart_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def install(connection: Any) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTION)
            for table in TABLES:
                cursor.execute(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION rempart_audit_append_only()"
                )
                cursor.execute(
                    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION rempart_audit_append_only()"
                )
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
        elif connection.vendor == "sqlite":
            for table in TABLES:
                for op in ("UPDATE", "DELETE"):
                    cursor.execute(
                        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                    )


def uninstall(connection: Any) -> None:
    with connection.cursor() as cursor:
        for table in TABLES:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            elif connection.vendor == "sqlite":
                for op in ("update", "delete"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION IF EXISTS rempart_audit_append_only()")


def grant_app_role(connection: Any, role: str) -> None:
    """Least privilege for the role the application logs in as: read and write every table of
    the schema, but only SELECT and INSERT on the audit tables."""
    quoted = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            name = connection.ops.quote_name(table)
            if table in TABLES:
                cursor.execute(f"REVOKE ALL ON {name} FROM {quoted}")
                cursor.execute(f"GRANT SELECT, INSERT ON {name} TO {quoted}")
            else:
                cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {quoted}")
        cursor.execute("SELECT current_schema()")
        schema = connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quoted}")
        cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}")
