"""``manage.py delete_orphan_results``: delete aggregation results no aggregate records, older than the lease.

Runs delete what a dead run left when they take its claim back (docs/aggregation.md); this lists the results
folder for what that cannot name: results stored before results were named by their claim. Run it once after
upgrading a deployment that kept such files (one listing, and one request per unrecorded file, on S3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand

from fma_core.connectors.factory import connector_from_settings
from fma_django_connectors.services import aggregate_orphans_delete


class Command(BaseCommand):
    help = "Delete aggregation result files that no aggregate records and that are older than the claim lease."

    def handle(self, *args: Any, **options: Any) -> None:
        lease = connector_from_settings().claim_lease
        deleted = aggregate_orphans_delete(written_before=datetime.now(UTC) - lease)
        for name in deleted:
            self.stdout.write(f"deleted {name}")
        self.stdout.write(f"deleted {len(deleted)} result file(s) no aggregate records")
