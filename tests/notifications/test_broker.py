"""The Redis transport publishes through one client per channel (bookings_project/broker.py),
and every message still lands on its queue, in order; Celery uses it for redis:// brokers."""

import subprocess
import sys
import uuid

import pytest
from kombu import Connection, Queue

from tests.conftest import REDIS_TEST_URL
from tests.test_settings import ROOT

pytestmark = pytest.mark.redis


def test_publishes_share_one_client_and_all_arrive():
    queue = Queue(f"test-broker-{uuid.uuid4().hex}")
    with Connection(REDIS_TEST_URL) as conn:  # redis:// is ours once the project is imported
        channel = conn.default_channel
        producer = conn.Producer(channel)
        clients = set()
        for n in range(5):
            producer.publish({"n": n}, routing_key=queue.name, declare=[queue])
            clients.add(id(channel._publish_client))
        assert len(clients) == 1
        assert conn.as_uri().startswith("redis://")  # as the logs show it
        with conn.SimpleQueue(queue) as simple:
            received = []
            for _ in range(5):
                message = simple.get(timeout=2)
                received.append(message.payload["n"])
                message.ack()
        assert received == [0, 1, 2, 3, 4]
        channel.queue_delete(queue.name)


def test_celery_publishes_through_it_for_redis_brokers():
    probe = (
        "import django; django.setup(); from bookings_project.celery import app; "
        "print(type(app.connection_for_write().transport).__module__)"
    )

    def transport(broker: str) -> str:
        env = {"PATH": "/usr/bin:/bin", "CELERY_BROKER_URL": broker}
        env["DJANGO_SETTINGS_MODULE"] = "bookings_project.settings.local"
        done = subprocess.run(  # noqa: S603 (our own interpreter and probe)
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert transport(REDIS_TEST_URL) == "bookings_project.broker"
    assert transport(REDIS_TEST_URL.replace("redis://", "rediss://")) == "kombu.transport.redis"
