from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = (
        "PostgreSQL: create (if missing) the ordinary application role and grant it table "
        "access. Run as the database owner after `migrate`. See docs/operations.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", default=settings.DATABASE_APP_ROLE)
        parser.add_argument("--password", default=None, help="also give the role LOGIN with this password")

    def handle(self, *args, role, password, **options):
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role only applies to PostgreSQL (the SQLite demo has no roles)")
        if not role.replace("_", "").isalnum():
            raise CommandError("role names may contain letters, digits and underscores only")
        from psycopg import sql

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
                               .format(sql.Identifier(role)).as_string(cursor.connection))
            cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone()[0]:
                raise CommandError(f"role {role} is a superuser or has BYPASSRLS; row-level security would not apply")
            if password:
                cursor.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)).as_string(cursor.connection))
            ident = sql.Identifier(role).as_string(cursor.connection)
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {ident}")
            cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ident}")
            cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE "
                           f"ON TABLES TO {ident}")
            cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ident}")
        self.stdout.write(f"role {role}: table access granted; connect the application as this role")
