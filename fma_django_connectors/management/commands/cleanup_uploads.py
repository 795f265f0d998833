"""``manage.py cleanup_uploads``: remove expired uploads with their bytes, and downloads whose URLs expired.

Each new upload also removes a few expired uploads, and each large download the expired downloads.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fma_django_connectors.services import upload_cleanup_expired
from fma_django_connectors.storage.downloads import download_files_cleanup


class Command(BaseCommand):
    help = "Remove every upload past its expires_at with the bytes sent for it, and downloads whose URLs expired."

    def handle(self, *args: Any, **options: Any) -> None:
        uploads = upload_cleanup_expired()
        downloads = download_files_cleanup()
        self.stdout.write(f"removed {uploads} expired upload(s) and {downloads} expired download(s)")
