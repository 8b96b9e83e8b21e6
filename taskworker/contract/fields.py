"""Field types every wire shape is built from: bounds and patterns checked while decoding.

A bound written here holds for every body that uses the field, on the scheduler and on
every worker alike, so no endpoint has to repeat it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

#: Highest ``important_level``; the queue keeps one FIFO per level, higher served first.
MAX_IMPORTANT_LEVEL = 9
#: The longest duration anything may be given (``deadline_second``, ``lock_timeout``,
#: ``interval_second``): 366 days, a leap year. Past it a duration is a typo or an attack,
#: and the date arithmetic of the loops that read it back stays far from overflowing.
MAX_SECONDS = 366 * 24 * 3600
#: The shortest interval between two fires of a trigger: shorter ones would turn the
#: Producer into a busy loop.
MIN_INTERVAL_SECONDS = 1
#: Ids are SQL BIGINTs; a larger one names nothing (and overflows the database driver).
MAX_ID = 2**63 - 1
#: Counts stored in SQL INT columns (``max_parallel``, attempts, capacities).
MAX_COUNT = 2**31 - 1
#: The end of the string, in Python's regexes and JSON Schema's alike: Python's ``$`` also
#: matches before a final newline, so "noop\n" would pass a pattern the document refuses.
END = r"(?![\s\S])"
#: A task type names a plugin; it appears in URLs, so keep it to a safe alphabet.
TASK_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}" + END

TaskType = Annotated[str, msgspec.Meta(pattern=TASK_TYPE_PATTERN, examples=["noop", "sleep"])]
Level = Annotated[int, msgspec.Meta(ge=0, le=MAX_IMPORTANT_LEVEL)]
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
#: The shortest deadline: a millisecond. MySQL keeps these in a single-precision FLOAT,
#: where a tinier one would be stored as 0 (no deadline, which no worker then accepts).
MIN_DEADLINE_SECONDS = 0.001
#: A deadline: from :data:`MIN_DEADLINE_SECONDS` to :data:`MAX_SECONDS`.
Deadline = Annotated[float, msgspec.Meta(ge=MIN_DEADLINE_SECONDS, le=MAX_SECONDS)]
#: A wait that may be zero (``lock_timeout``), at most :data:`MAX_SECONDS`.
WaitSeconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)]
Interval = Annotated[float, msgspec.Meta(ge=MIN_INTERVAL_SECONDS, le=MAX_SECONDS)]
Name = Annotated[str, msgspec.Meta(max_length=255)]
_PORT = r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
_NAME = r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?"


def _ipv6() -> str:
    """RFC 3986's IPv6address, as a regex (Python's URL parser refuses any other)."""
    h16, byte = "[0-9A-Fa-f]{1,4}", "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    ls32 = rf"(?:{h16}:{h16}|(?:{byte}\.){{3}}{byte})"
    forms = [rf"(?:{h16}:){{6}}{ls32}", rf"::(?:{h16}:){{5}}{ls32}"]
    tails = [rf"(?:{h16}:){{{n}}}{ls32}" for n in (4, 3, 2, 1)] + [ls32, h16, ""]
    for before, tail in enumerate(tails):
        head = rf"(?:(?:{h16}:){{0,{before}}}{h16})?" if before else rf"(?:{h16})?"
        forms.append(rf"{head}::{tail}")
    return "(?:" + "|".join(forms) + ")"


#: An http(s) URL that can be called: a host (DNS labels, an IPv4 address, or an IPv6
#: address in brackets), a port that exists, no credentials, then printable ASCII (as a URL
#: is sent: anything else percent-encoded). Anything looser reaches the HTTP client of every
#: loop that calls it, which cannot parse it. Character classes are spelled out, so that
#: JSON Schema's regexes and Python's read the pattern alike.
URL_PATTERN = rf"^https?://(?:\[{_ipv6()}\]|{_NAME})" + _PORT + r"(?:[/?#][!-~]*)?" + END
Url = Annotated[str, msgspec.Meta(pattern=URL_PATTERN, max_length=1024)]
#: A resource is locked as the lease ``resource:<name>``, in a 255-character column.
Resource = Annotated[str, msgspec.Meta(min_length=1, max_length=255 - len("resource:"))]
#: The years a time on the wire may name. A time is stored in UTC, and an offset moves it by
#: up to a day: one on the first or last day a datetime holds (years 1 and 9999) would have
#: no UTC value.
FIRST_YEAR, LAST_YEAR = 2, 9998
_YEARS = (
    r"^(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]"
    r"|999[0-8])-"
)
#: Times on the wire carry their zone (``Z`` or an offset); a naive time is ambiguous. The
#: years are checked by :func:`check_time` (msgspec bounds no datetime); the pattern tells
#: clients of the OpenAPI document the same.
AwareTime = Annotated[datetime, msgspec.Meta(tz=True, extra_json_schema={"pattern": _YEARS})]

#: A worker's registered name: it appears in URLs and in transition records as ``worker:<name>``.
WorkerName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}" + END)]


def check_time(name: str, value: datetime | None) -> None:
    """Refuse a time outside :data:`FIRST_YEAR`..:data:`LAST_YEAR`; called from the
    ``__post_init__`` of the shapes holding an :data:`AwareTime`, where msgspec turns the
    ``ValueError`` into a validation error the codec names ``name`` in."""
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"Invalid field `{name}`: a time must lie in the years {FIRST_YEAR:04d} to {LAST_YEAR}"
        )
