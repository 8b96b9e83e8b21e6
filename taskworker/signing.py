"""HMAC-signed requests between the scheduler and its workers (DESIGN §4, shared secret).

Both sides import this module: a worker signs its registration, heartbeats, log batches and
task reports; the scheduler signs the commands it sends to workers; each verifies the other.

The signature is HMAC-SHA256, under ``TASK_WORKER_SECRET``, of one canonical string::

    METHOD \\n path?query \\n timestamp \\n worker name \\n sha256(body) in hex

Signing the path *with* its query binds ``?task_id=..&action=..`` to the signature, so a
captured signature cannot be replayed against another task or action. The timestamp (Unix
seconds, a header) bounds replays to :data:`REPLAY_WINDOW_SECONDS` either way, which also
tolerates modest clock skew between nodes. The worker name is signed so that the actor in a
transition record cannot be swapped in transit. Digests are compared in constant time.

Every header is bounded before it is used: the timestamp is 1 to 12 ASCII digits, the
signature 64 hex digits, the name at most 255 printable ASCII characters; anything else is
refused (401) as unsigned, so no header can make the arithmetic overflow or a log line grow.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from taskworker.errors import Unauthorized

#: Unix seconds when the request was signed.
TIMESTAMP_HEADER = "X-Task-Timestamp"
#: Hex HMAC-SHA256 of the canonical string.
SIGNATURE_HEADER = "X-Task-Signature"
#: The signing node's name (a worker's registered name, or the scheduler node's).
WORKER_HEADER = "X-Task-Worker"
#: A signature older or newer than this is refused (replay and clock-skew bound).
REPLAY_WINDOW_SECONDS = 60
#: The shape of each header: Unix seconds (12 digits reach the year 33658), a hex SHA-256,
#: a node's name (a worker's registered name is at most 255 characters).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_NAME = re.compile(r"[ -~]{0,255}")


def _canonical(method: str, target: str, body: bytes, timestamp: str, worker: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), target, timestamp, worker, digest)).encode()


def signature(
    secret: str, method: str, target: str, body: bytes, timestamp: str, *, worker: str = ""
) -> str:
    """The hex signature of one request; ``target`` is the path plus ``?query`` if any."""
    canonical = _canonical(method, target, body, timestamp, worker)
    return hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()


def sign(
    secret: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    worker: str = "",
    now: float | None = None,
) -> dict[str, str]:
    """Headers to add to a request so that the other side accepts it."""
    timestamp = str(int(time.time() if now is None else now))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, method, target, body, timestamp, worker=worker),
    }
    if worker:
        headers[WORKER_HEADER] = worker
    return headers


def is_signed(headers: Mapping[str, str]) -> bool:
    """Whether a request claims a signature (then it must verify; no fallback to tokens)."""
    return _get(headers, SIGNATURE_HEADER) is not None


def verify(
    secret: str,
    method: str,
    target: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> str:
    """Check a signed request and return the signer's name; raise :class:`Unauthorized`.

    ``headers`` is looked up case-insensitively, so a WSGI environ-style mapping or a plain
    dict both work.
    """
    given = _get(headers, SIGNATURE_HEADER)
    stamp = _get(headers, TIMESTAMP_HEADER)
    if not given or not stamp:
        raise Unauthorized(f"a signed request needs {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
    if not _TIMESTAMP.fullmatch(stamp):
        raise Unauthorized(f"{TIMESTAMP_HEADER} is not Unix seconds (1 to 12 digits)")
    if not _SIGNATURE.fullmatch(given):
        raise Unauthorized(f"{SIGNATURE_HEADER} is not 64 hex digits")
    worker = _get(headers, WORKER_HEADER) or ""
    if not _NAME.fullmatch(worker):
        raise Unauthorized(f"{WORKER_HEADER} is not a name of at most 255 printable characters")
    clock = time.time() if now is None else now
    if abs(clock - int(stamp)) > REPLAY_WINDOW_SECONDS:
        raise Unauthorized(
            f"the signature is outside the {REPLAY_WINDOW_SECONDS} s window; check the clocks"
        )
    expected = signature(secret, method, target, body, stamp, worker=worker)
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise Unauthorized("the request signature does not match")
    return worker


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value
