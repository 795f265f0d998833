"""``manage.py cleanup_uploads``: remove expired uploads with their bytes (each new upload also removes a few)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fma_django_connectors.services import upload_cleanup_expired


class Command(BaseCommand):
    help = "Remove every upload past its expires_at, with the bytes sent for it."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = upload_cleanup_expired()
        self.stdout.write(f"removed {removed} expired upload{'' if removed == 1 else 's'}")
