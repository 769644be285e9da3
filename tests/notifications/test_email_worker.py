"""End to end with the real parts: gunicorn serving the API, Redis as the broker, a Celery
worker sending the email, PostgreSQL holding the outbox. Everything runs as its own process
against the test database, as in production. (The broker down, and the relay sending what it
missed: test_redis_down.py.)
"""

import time

import pytest
import requests

from bookings.services import api_key_create
from notifications.models import EmailOutbox

from ..bookings.create_helpers import create_body, in_days
from .live import log, stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _post(
    base_url: str, secret: str, body: dict, key: str | None = None, request_id: str | None = None
):
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    if request_id:
        headers["X-Request-Id"] = request_id
    return requests.post(f"{base_url}/v1/bookings", json=body, headers=headers, timeout=30)


def test_worker_sends_the_confirmation_once(
    team, event_type, broker_url, mail_dir, start_server, start_worker
):
    _, secret = api_key_create(team=team)
    base_url = start_server(broker_url)
    worker = start_worker(broker_url)
    body = create_body(event_type, in_days(2))

    response = _post(base_url, secret, body, key="worker-once", request_id="trace-worker-1")
    assert response.status_code == 201, response.text
    booking_id = response.json()["booking"]["id"]

    row = wait_until(
        lambda: EmailOutbox.objects.filter(booking_id=booking_id, status="sent").first(),
        what="the worker to send the email",
    )
    assert (row.kind, row.attempts, row.to_email) == ("confirmation", 1, "ada@example.com")
    files = wait_until(lambda: list(mail_dir.iterdir()), what="the email file")
    message = files[0].read_text()
    assert "To: ada@example.com" in message
    assert "METHOD:REQUEST" in message

    # A replay queues nothing: still one row, one email.
    assert _post(base_url, secret, body, key="worker-once").status_code == 200
    time.sleep(1.5)
    assert EmailOutbox.objects.filter(booking_id=booking_id).count() == 1
    assert len("".join(f.read_text() for f in mail_dir.iterdir()).split("\nTo: ")) == 2

    # The request id travelled with the task: the worker's lines for it show the client's id.
    stop(worker)
    worker_log = log(worker)
    sent = [line for line in worker_log.splitlines() if f"Sent email {row.pk} " in line]
    assert len(sent) == 1, worker_log
    assert " INFO notifications.services [trace-worker-1] " in sent[0]
    assert "[trace-worker-1] Task notifications.tasks.send_email_task[" in worker_log
    assert "INFO celery.apps.worker [-] celery@" in worker_log  # the worker's own lines: no request
