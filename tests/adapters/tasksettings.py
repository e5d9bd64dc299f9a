"""The ``TASKS`` setting of the test suites and the examples' choice of task backend.

The immediate backend by default (tasks run after the commit, in the request, as in the
demos); tests that need the queue switch to the database backend with
``override_settings(TASKS=DATABASE_TASKS)``. Which classes exist depends on the
environment (the matrix's oldest cell has Wagtail 7.0, which pins django-tasks 0.7, whose
database backend is its own; django-tasks-db needs django.tasks or django-tasks >= 0.12).
"""

from __future__ import annotations

import os
from importlib.util import find_spec

#: The framework cmi_django.tasks uses (the same rule: django.tasks first).
FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
#: ENQUEUE_ON_COMMIT: cmi_django.tasks already enqueues after the commit; django-tasks < 0.12
#: would defer the run once more, which under the tests' captured commit hooks runs it after
#: the enqueue returned (production runs it at once: no transaction is open then), so the
#: order handed to Oscar's e-mail task would be missed (later versions ignore the key).
IMMEDIATE_TASKS = {
    "default": {
        "BACKEND": f"{FRAMEWORK}.backends.immediate.ImmediateBackend",
        "ENQUEUE_ON_COMMIT": False,
    }
}

if find_spec("django_tasks_db") and (FRAMEWORK == "django.tasks" or find_spec("django_tasks.base")):
    DATABASE_BACKEND, DATABASE_APP = "django_tasks_db.DatabaseBackend", "django_tasks_db"
else:  # django-tasks < 0.12 (Wagtail 7.0-7.3)
    DATABASE_BACKEND = "django_tasks.backends.database.DatabaseBackend"
    DATABASE_APP = "django_tasks.backends.database"

#: The apps to install: the backport itself on Django 5.2 (before 0.12 it resets its
#: backends on a change of TASKS only as an installed app), and the queue's models.
TASK_APPS = (["django_tasks"] if FRAMEWORK == "django_tasks" else []) + [DATABASE_APP]

#: ENQUEUE_ON_COMMIT: django-tasks < 0.12 would otherwise defer the row to the commit
#: itself; cmi_django.tasks writes it inside the transaction (later versions ignore it).
DATABASE_TASKS = {"default": {"BACKEND": DATABASE_BACKEND, "ENQUEUE_ON_COMMIT": False}}

#: The suites' default (``TASKS``): the immediate backend; ``CMI_TEST_TASKS=database``
#: makes it the database backend, e.g. for benchmarks/bench_oscar_callback.py (which
#: serves these settings) to measure a callback that only queues its e-mail.
TEST_TASKS = DATABASE_TASKS if os.environ.get("CMI_TEST_TASKS") == "database" else IMMEDIATE_TASKS
