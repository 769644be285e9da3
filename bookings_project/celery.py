import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from bookings_project import broker
from bookings_project.api.request_id import current_request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bookings_project.settings.local")
broker.install()  # publishing through one Redis client per channel

app = Celery("bookings_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# --- The request id, carried from a request into the tasks it enqueues ---------------------
# A message header set at publish time. The worker (Celery 5, protocol 2) hands it to the task
# both as an attribute of ``task.request`` and in ``task.request.headers``; ``apply(headers=…)``
# only in the latter. In eager mode nothing is published: the task runs in the request's own
# thread (after commit, still inside the request), where the id is already set and stays.
REQUEST_ID_HEADER = "request_id"


@before_task_publish.connect
def request_id_to_headers(headers=None, **kwargs):
    request_id = current_request_id.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def request_id_from_headers(task=None, **kwargs):
    request = task.request
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (request.headers or {}).get(
        REQUEST_ID_HEADER
    )
    if request_id:
        request.request_id_token = current_request_id.set(request_id)


@task_postrun.connect
def request_id_reset(task=None, **kwargs):
    token = getattr(task.request, "request_id_token", None)
    if token is not None:
        current_request_id.reset(token)
