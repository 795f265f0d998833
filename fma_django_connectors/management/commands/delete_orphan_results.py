"""``manage.py delete_orphan_results``: delete stored files no row names: aggregation results no aggregate records,
older than the lease, and update files no update records, older than ``services.UPDATE_ORPHAN_MIN_AGE``.

Runs delete what a dead run left when they take its claim back (docs/aggregation.md); this lists the results
folder for what that cannot name: results stored before results were named by their claim. The updates folder
holds the files of requests killed between writing an update's file and committing its row. The aggregator does
the same on each deploy (``{"detail": "delete_orphan_results"}``); one listing per folder, and one request per
unrecorded file, on S3.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fma_core.connectors.factory import connector_from_settings
from fma_django_connectors.services import orphans_delete


class Command(BaseCommand):
    help = (
        "Delete aggregation result files no aggregate records (older than the claim lease) and update files no "
        "update records (older than an hour)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = orphans_delete(claim_lease=connector_from_settings().claim_lease)
        for name in [*deleted.results, *deleted.updates]:
            self.stdout.write(f"deleted {name}")
        self.stdout.write(str(deleted))
