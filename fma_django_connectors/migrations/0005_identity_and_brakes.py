"""Who may take part: per-model ``registration`` and ``client_auth``, clients' public keys, enrollment tokens,
and the table of Django's database cache (``CACHES["default"]``), where throttle counts and signed requests'
nonces are shared by all Lambda containers.

The cache table comes from a migration rather than ``manage.py createcachetable``: the deployed service only
ever runs ``migrate`` (the ``update_metadata_db`` event), and test databases are built by migrating too.
``createcachetable`` creates the table of every ``DatabaseCache`` in the settings and skips one that exists.
"""

import django.core.validators
import django.db.models.deletion
from django.core.management import call_command
from django.db import migrations, models


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS fma_cache")


class Migration(migrations.Migration):
    dependencies = [
        ("fma_django_connectors", "0004_modelartifact_aggregate"),
    ]

    operations = [
        migrations.AddField(
            model_name="client",
            name="public_key",
            field=models.BinaryField(blank=True, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="federatedmodel",
            name="client_auth",
            field=models.CharField(choices=[("uuid", "Uuid"), ("signed", "Signed")], default="uuid", max_length=10),
        ),
        migrations.AddField(
            model_name="federatedmodel",
            name="registration",
            field=models.CharField(
                choices=[("open", "Open"), ("invite", "Invite"), ("closed", "Closed")], default="open", max_length=10
            ),
        ),
        migrations.CreateModel(
            name="EnrollmentToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_hash", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "uses",
                    models.PositiveIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1)]),
                ),
                ("used", models.PositiveIntegerField(default=0, editable=False)),
                ("expires_at", models.DateTimeField()),
                ("created_on", models.DateTimeField(auto_now_add=True)),
                (
                    "federated_model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="enrollment_tokens",
                        to="fma_django_connectors.federatedmodel",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_on", "-id"],
            },
        ),
        migrations.RunPython(create_cache_tables, drop_cache_table),
    ]
