"""LogDumper: tasks from matching log lines (DESIGN §1).

:mod:`.follower` reads what is new in a set of files, across rotation and truncation, and
says where it stopped; :mod:`.rules` turns matching lines into create bodies. The loop
(:mod:`taskscheduler.loops.logdumper`) commits the tasks and the new offsets in one
transaction, which is what makes a restart neither repeat nor skip a line.
"""
