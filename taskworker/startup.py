"""What a long-running process does once it has started (the API's and the worker's gunicorn
processes, a node's loops process).

Everything built at start-up — modules, the app, pools, compiled statements, plugins —
lives as long as the process. Python's full garbage collections walk every object that is
tracked, so in a started process each one took tens of milliseconds, and whatever request
or pass ran then waited that long (a tail of the round-trip figures in
docs/performance.md). Frozen, those objects are left out, and a full collection walks only
what came after.
"""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Collect once, then move every object alive now out of the collector's sight."""
    gc.collect()
    gc.freeze()
