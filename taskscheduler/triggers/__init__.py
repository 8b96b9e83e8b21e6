"""When timed tasks fire: cron expressions, fixed intervals, lists of times (DESIGN §2).

``schedule_for(...)`` builds the :class:`Schedule` of a trigger definition and names the bad
field when it cannot; :func:`due` decides which fire times a Producer pass creates, applying
the misfire policy after downtime.
"""

from taskscheduler.triggers.base import Schedule, due
from taskscheduler.triggers.schedules import schedule_for

__all__ = ["Schedule", "due", "schedule_for"]
