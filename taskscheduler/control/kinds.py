"""The kinds of task (``tasks.kind``): the control tasks, and everything else.

A control task stands for a whole topology or fan-out (DESIGN §2). It runs on no worker:
its children are ordinary tasks that point at it through ``control_task_id``, and the
:class:`~taskscheduler.loops.controls.ControlLoop` releases them, cancels them, rolls them
back and moves the control task so that its state sums theirs up. The Dispatcher and the
Scheduler never take one.
"""

from __future__ import annotations

#: ``tasks.kind`` of the control tasks (everything else is dispatched to workers).
TOPOLOGY = "topology"
FANOUT = "fanout"
CONTROL_KINDS = (TOPOLOGY, FANOUT)
