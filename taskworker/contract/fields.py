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
#: A task type names a plugin; it appears in URLs, so keep it to a safe alphabet.
TASK_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

TaskType = Annotated[str, msgspec.Meta(pattern=TASK_TYPE_PATTERN)]
Level = Annotated[int, msgspec.Meta(ge=0, le=MAX_IMPORTANT_LEVEL)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Name = Annotated[str, msgspec.Meta(max_length=255)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=1024)]
Resource = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: Times on the wire carry their zone (``Z`` or an offset); a naive time is ambiguous.
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]

#: A worker's registered name: it appears in URLs and in transition records as ``worker:<name>``.
WorkerName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")]
