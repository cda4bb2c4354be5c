"""The Celery app: `celery -A comments_project worker` and `... beat`."""

import os

from celery import Celery, Task, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comments_project.settings")

app = Celery("comments_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs: object) -> None:
    """The folder-based broker needs its folders before the first message."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_database_connections(sender: Task | None = None, **kwargs: object) -> None:
    """Django's per-request rule around every task, in the thread that runs it.

    Database connections are per thread, so each pool thread keeps its own for
    DATABASE_CONN_MAX_AGE and drops it when broken or left in a bad state. An
    eager task (tests) runs inside the caller's transaction and is left alone.
    """
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
