"""Storage that really fails, for the fault tests: the local model data folder broken two ways.

- :func:`block_folder`: a plain file where the service expects one of its folders (``updates/``,
  ``aggregates/``), so every write under it fails in the operating system (``FileExistsError``: it exists
  and is not a directory), whoever runs the tests (a read-only folder would not stop root).
- :class:`FullDiskStorage`: Django's ``FileSystemStorage`` on a disk that fills up. Its own ``_save``
  writes the first bytes of a file to disk, then the write fails with ``ENOSPC``, leaving them there, as
  a full disk does. Reads, listings and deletions are the real ones. Set as the default storage through
  ``settings.STORAGES`` (:func:`full_disk_storages`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage

# Bytes a file may take before the disk is full: less than any safetensors file the tests write.
FULL_DISK_BYTES = 16


class _FillingDisk(File):
    """The content being saved, in chunks that stop with ``ENOSPC`` once ``capacity`` bytes were handed out."""

    def __init__(self, content: File, capacity: int) -> None:
        super().__init__(content.file, name=content.name)
        self._capacity = capacity

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        self.seek(0)
        room = self._capacity
        while room:
            data = self.read(room)
            if not data:
                return
            room -= len(data)
            yield data
        if self.read(1):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDiskStorage(FileSystemStorage):
    """``FileSystemStorage`` whose disk holds ``capacity`` more bytes per file, then is full."""

    def __init__(self, *, capacity: int = FULL_DISK_BYTES, **options) -> None:
        super().__init__(**options)
        self.capacity = capacity

    def _save(self, name, content):
        return super()._save(name, _FillingDisk(content, self.capacity))


def full_disk_storages(storages: dict) -> dict:
    """``STORAGES`` with the default storage on a full disk (same folder, ``MEDIA_ROOT``)."""
    return {**storages, "default": {"BACKEND": f"{__name__}.FullDiskStorage"}}


def block_folder(root: Path, folder: str) -> Path:
    """Put a plain file where ``root/folder`` should be a folder; remove it (``unlink``) to recover."""
    blocker = root / folder
    assert not blocker.exists(), f"{blocker} exists already: blocking it would hide what is in it"
    root.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    return blocker


def stored_files(root: Path) -> list[str]:
    """Every file under ``root``, relative to it (the blocker of :func:`block_folder` included)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
