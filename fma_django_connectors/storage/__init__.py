"""Bytes in Django's storage (local disk, or S3): weights files as safetensors, signed upload and download
URLs that bypass the API handler, the checks of an upload's bytes, and weights in responses within the
Lambda limit.

Layer rule: the bottom, beside ``models``. Of this package, modules here import ``models`` and ``exceptions``
only (besides Django, DRF and ``fma_core``), never ``services``, ``selectors`` or anything above them (they,
the connectors and the API call in here).
"""
