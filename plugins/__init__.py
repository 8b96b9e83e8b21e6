"""The plugins shipped with TaskScheduler; each module defines one or more ``taskworker.Task``."""
