"""``python -m taskworker`` is ``taskworker``."""

from taskworker.cli import main

main()
