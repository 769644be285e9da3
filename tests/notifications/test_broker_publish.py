"""``broker.publish``: a task's message written by hand and pushed in one ``LPUSH`` is Celery's
own message, field by field; Celery keeps every case the hand-written one does not cover.
(A worker running what gunicorn publishes this way: test_email_worker.py.)"""

import base64
import json
import subprocess
import sys
import uuid

import pytest
import redis
from celery import Celery

from bookings_project import broker
from bookings_project.api.request_id import current_request_id
from tests.conftest import REDIS_TEST_URL
from tests.test_settings import ROOT

pytestmark = pytest.mark.redis

NAME = "notifications.tasks.send_email_task"


@pytest.fixture
def app():
    """A Celery app configured as production's (the Django settings), publishing to the test
    Redis database: this test process's own settings run tasks in-process."""
    app = Celery("test-publish", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=REDIS_TEST_URL, task_always_eager=False)
    yield app
    app.close()


@pytest.fixture
def task(app):
    """The real task, as that app has it (a shared task is every app's)."""
    import notifications.tasks  # noqa: F401 (registers it)

    return app.tasks[NAME]


@pytest.fixture
def queue():
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.delete("celery")
    yield client
    client.delete("celery")


def _popped(client: redis.Redis) -> dict:
    raw = client.rpop("celery")
    assert raw is not None, "nothing on the queue's list"
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def _ids(message: dict) -> dict:
    """The fields that are new on every message, taken out (and checked) so the rest compares."""
    headers, properties = message["headers"], message["properties"]
    task_id = headers.pop("id")
    assert str(uuid.UUID(task_id)) == task_id
    assert headers.pop("root_id") == properties.pop("correlation_id") == task_id
    delivery_tag = properties.pop("delivery_tag")
    assert str(uuid.UUID(delivery_tag)) == delivery_tag != task_id
    return {"id": task_id, "delivery_tag": delivery_tag}


@pytest.mark.parametrize("request_id", [None, "trace-publish"])
def test_the_message_is_celerys_own_field_by_field(app, task, queue, request_id):
    assert broker.refusal(task) is None
    token = current_request_id.set(request_id)
    try:
        task.delay(outbox_id=42)  # Celery's own
        broker.TaskPublisher(task)(outbox_id=42)  # ours
    finally:
        current_request_id.reset(token)
    celerys, ours = _popped(queue), _popped(queue)
    assert queue.llen("celery") == 0

    celery_ids, our_ids = _ids(celerys), _ids(ours)
    assert celery_ids["id"] != our_ids["id"]
    assert ours == celerys  # everything else: headers, properties, body, encodings
    assert ours["headers"]["kwargsrepr"] == "{'outbox_id': 42}"
    assert ours["body"] == [
        [],
        {"outbox_id": 42},
        dict.fromkeys(["callbacks", "errbacks", "chain", "chord"]),
    ]
    assert ours["properties"]["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert ours["headers"].get("request_id") == request_id  # the receiver of before_task_publish


def test_arguments_that_are_not_integers_are_described_as_celery_does(app, queue):
    @app.task(name="t.any", ignore_result=True)
    def any_arguments(**kwargs) -> None: ...

    kwargs = {"outbox_id": 1, "note": "x" * 2000, "nested": {"a": [1, 2]}}
    any_arguments.delay(**kwargs)
    broker.TaskPublisher(any_arguments)(**kwargs)
    celerys, ours = _popped(queue), _popped(queue)
    _ids(celerys), _ids(ours)
    assert ours == celerys
    assert ours["headers"]["kwargsrepr"] != repr(kwargs)  # saferepr's cut, as Celery's
    assert "..." in ours["headers"]["kwargsrepr"]


def test_the_publisher_keeps_the_client_and_each_message_arrives_once_in_order(task, queue):
    publisher = broker.TaskPublisher(task)
    for n in range(20):
        publisher(outbox_id=n)
    received = [_popped(queue)["body"][1]["outbox_id"] for _ in range(20)]
    assert received == list(range(20))
    assert queue.llen("celery") == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"broker_url": "rediss://127.0.0.1:6379/13"},
            "the broker URL is not a plain redis:// one",
        ),
        ({"broker_url": "amqp://guest@127.0.0.1//"}, "the broker URL is not a plain redis:// one"),
        ({"task_serializer": "pickle"}, "task_serializer is 'pickle'"),
        ({"task_compression": "gzip"}, "task_compression is 'gzip'"),
        ({"task_routes": {NAME: {"queue": "emails"}}}, "task_routes is "),
        ({"task_default_priority": 5}, "task_default_priority is 5"),
        ({"task_default_delivery_mode": "transient"}, "task_default_delivery_mode is 'transient'"),
        ({"broker_transport_options": {"global_keyprefix": "p:"}}, "global_keyprefix is set"),
    ],
)
def test_a_configuration_the_message_would_not_match_is_left_to_celery(app, task, change, reason):
    app.conf.update(change)
    assert reason in broker.refusal(task)


def test_a_task_that_keeps_its_result_or_expires_is_left_to_celery(app):
    @app.task(name="t.result", ignore_result=False)
    def keeps() -> None: ...

    @app.task(name="t.expires", ignore_result=True, expires=60)
    def expires() -> None: ...

    assert broker.refusal(keeps) == "the task stores its result"
    assert broker.refusal(expires) == "the task's expires is 60"


def test_this_process_runs_tasks_in_process_so_celery_publishes():
    # The suite's settings have no broker: eager, and publish is task.delay (which tests patch).
    assert broker.publisher(NAME) is None


def test_a_broker_that_is_down_raises_redis_errors(task):
    dead = broker.TaskPublisher(task)
    dead.client = broker.redis_wire.WireClient(
        "redis://127.0.0.1:1/0", connect_timeout=0.5, timeout=0.5
    )
    with pytest.raises(redis.ConnectionError):
        dead(outbox_id=1)  # email_dispatch counts it as the broker's outage: test_services.py


def test_a_server_with_a_redis_broker_publishes_by_hand():
    probe = (
        "import django; django.setup(); import notifications.tasks; "
        "from bookings_project import broker; "
        f"print(broker.publisher({NAME!r}) is not None, broker.refusal(broker.publisher"
        f"({NAME!r}).app.tasks[{NAME!r}]) if broker.publisher({NAME!r}) else '')"
    )
    env = {"PATH": "/usr/bin:/bin", "CELERY_BROKER_URL": REDIS_TEST_URL}
    env["DJANGO_SETTINGS_MODULE"] = "bookings_project.settings.local"
    done = subprocess.run(  # noqa: S603 (our own interpreter and probe)
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "None"]


def test_inside_a_workers_task_celery_publishes_with_the_parent(app, task, queue, monkeypatch):
    from celery._state import _task_stack

    monkeypatch.setattr(broker, "publisher", lambda name: broker.TaskPublisher(task))
    parent_id = str(uuid.uuid4())
    task.push_request(id=parent_id, root_id=parent_id, called_directly=False)
    _task_stack.push(task)
    try:
        broker.publish(task, outbox_id=5)
    finally:
        _task_stack.pop()
        task.pop_request()
    message = _popped(queue)
    assert message["headers"]["parent_id"] == message["headers"]["root_id"] == parent_id


def test_outside_a_task_publish_writes_the_message_itself(app, task, queue, monkeypatch):
    monkeypatch.setattr(broker, "publisher", lambda name: broker.TaskPublisher(task))
    monkeypatch.setattr(task, "delay", lambda **kwargs: pytest.fail("Celery's publish"))
    broker.publish(task, outbox_id=6)
    message = _popped(queue)
    assert (message["body"][1], message["headers"]["parent_id"]) == ({"outbox_id": 6}, None)
