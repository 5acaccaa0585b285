"""Training tasks and the one runner that drives them (`runner.run`, `runner.fit`).

A new task is one module (a `tfp_dgbn.tasks.base.Task` and its settings
class) plus one line in `TASKS` below; ``dgbn fit NAME`` and its ``--help``
follow from the settings class.
"""
from tfp_dgbn.tasks.pattern_rings import PatternRingTask
from tfp_dgbn.tasks.rings import RingTask
from tfp_dgbn.tasks.table import TableTask
from tfp_dgbn.tasks.toys import TOY_TASKS
from tfp_dgbn.validate import InputError

TASKS = {task.name: task for task in (RingTask(), PatternRingTask(), TableTask()) + TOY_TASKS}


def make_settings(task, **settings):
    """The settings object of ``task`` with ``settings`` overriding its defaults (ValueError names a bad one)."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    return TASKS[task].settings(task=task, **settings)
