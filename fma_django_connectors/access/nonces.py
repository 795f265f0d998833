"""Nonces of signed requests, kept per key in the metadata database so that a replay is refused.

Every Lambda container reaches the metadata database, and a nonce is a row under a unique (key, nonce)
constraint: of two requests carrying the same nonce, however many containers receive them at once, one insert
wins and the other fails on the constraint. Rows are never evicted to make room (as a cache culls its keys
when full, letting anyone's traffic push out a victim's nonces): each stays until no request carrying its
nonce could be on time, then goes with the expired rows each process deletes about once a minute.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from fma_core.signatures import VerifiedSignature, public_key_text
from fma_django_connectors.access.sweeps import PeriodicSweep
from fma_django_connectors.models import SignatureNonce

# Expired rows are deleted by the first nonce a process stores after this many seconds.
CLEANUP_INTERVAL_SECONDS = 60
# Rows are deleted this long after they expire, so that containers whose clocks differ a little still agree.
CLOCK_MARGIN_SECONDS = 60

sweep = PeriodicSweep(CLEANUP_INTERVAL_SECONDS)


def nonce_use(*, public_key: bytes, signature: VerifiedSignature, now: float) -> bool:
    """Store the nonce of ``signature`` by ``public_key``; False when that key already used it (a replay)."""
    try:
        # A savepoint: losing on the constraint leaves a surrounding transaction usable.
        with transaction.atomic():
            SignatureNonce.objects.create(
                key=public_key_text(public_key), nonce=signature.nonce, expires_at=signature.expires
            )
    except IntegrityError:
        return False
    _delete_expired(now)
    return True


def _delete_expired(now: float) -> None:
    """Delete the nonces no request can carry on time any more, at most once per interval per process."""
    if not sweep.due(now):
        return
    SignatureNonce.objects.filter(expires_at__lt=int(now) - CLOCK_MARGIN_SECONDS).delete()
