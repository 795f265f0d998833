"""The table of Django's database cache (``CACHES["default"]``): throttle counts shared by all Lambda containers.

A migration rather than ``manage.py createcachetable``: the deployed service only ever runs ``migrate`` (the
``update_metadata_db`` event), and the test databases are built by migrating too. ``createcachetable`` creates
the table of every ``DatabaseCache`` in the settings and skips one that exists, so running it is idempotent.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS fma_cache")


class Migration(migrations.Migration):
    dependencies = [("fma_django_connectors", "0001_initial")]

    operations = [migrations.RunPython(create_cache_tables, drop_cache_table)]
