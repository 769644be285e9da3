"""Celery's Redis transport, publishing through one client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes
(``conn_or_acquire``), and building one copies redis-py's table of some 170 reply callbacks:
a fifth of a create's CPU went into enqueueing its confirmation email, most of it there. A
client holds no connection of its own (they come from the channel's pool), so one per channel
and pool does the same work. ``install`` makes it kombu's transport for ``redis://`` URLs
(called where the Celery app is made, before any connection): the URLs and the logs stay as
they were ("Connected to redis://…").
"""

import base64
import functools
import os
import uuid

import kombu.transport
import orjson
from celery import signals
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from kombu.transport import redis as kombu_redis

from bookings_project import redis_wire

NAME = "bookings_project.broker:Transport"


class Channel(kombu_redis.Channel):
    _publish_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._publish_client
        if client is None or client.connection_pool is not pool:
            client = self._publish_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    kombu.transport.TRANSPORT_ALIASES["redis"] = NAME
    kombu.transport._transport_cache.pop("redis", None)  # resolved again, to this


# --- Publishing a task: Celery's message, written straight onto its Redis list -----------------
#
# ``task.delay`` costs about 900 µs of CPU here (measured in bench/README.md's sixth round): the
# router, the producer pool, kombu's declare cache, ``saferepr``, a message copied through three
# layers, redis-py's client. What reaches Redis is one ``LPUSH`` of a JSON envelope onto the
# queue's list. ``publish`` writes that envelope itself, with Celery's protocol 2 fields as
# Celery fills them (``tests/notifications/test_broker_publish.py`` compares the two messages
# field by field; test_email_worker.py has a worker run what gunicorn publishes), and sends it
# over ``redis_wire`` in one round trip: about 140 µs, most of it the socket's ``sendall``.
# It runs Celery's ``before_task_publish``/``after_task_publish`` receivers as Celery does
# (the request id header is one), and leaves everything it does not write itself to Celery:
# eager mode, a call from inside a worker's task (parent and root ids, the trail), a broker
# URL ``redis_wire`` does not speak, and any configuration the envelope would not match
# (``refusal`` names what).


def refusal(task) -> str | None:
    """Why ``publish`` leaves ``task`` to Celery with this configuration, or None."""
    conf = task.app.conf
    if not redis_wire.supports(conf.broker_url or ""):
        return "the broker URL is not a plain redis:// one"
    expected = {
        "task_protocol": 2,
        "task_serializer": "json",
        "task_compression": None,
        "task_routes": None,
        "task_queues": None,
        "task_default_exchange_type": "direct",
        "task_default_priority": None,
        "task_send_sent_event": False,
        "task_inherit_parent_priority": False,
    }
    for name, value in expected.items():
        if conf[name] != value:
            return f"{name} is {conf[name]!r}"
    if conf.task_default_delivery_mode not in (2, "persistent"):
        return f"task_default_delivery_mode is {conf.task_default_delivery_mode!r}"
    options = conf.broker_transport_options or {}
    for name in ("global_keyprefix", "sep", "priority_steps", "queue_order_strategy"):
        if name in options:
            return f"the broker transport option {name} is set"
    if not task.ignore_result:
        return "the task stores its result"
    for name in ("expires", "time_limit", "soft_time_limit", "priority"):
        if getattr(task, name, None) is not None:
            return f"the task's {name} is {getattr(task, name)!r}"
    return None


class TaskPublisher:
    """``TaskPublisher(task)(**kwargs)``: ``task.delay(**kwargs)`` as one ``LPUSH`` (for a task
    and configuration ``refusal`` accepts)."""

    def __init__(self, task):
        self.app = app = task.app
        self.name = task.name
        self.queue = app.amqp.queues[app.conf.task_default_queue]
        self.kwargsrepr_maxsize = app.amqp.kwargsrepr_maxsize
        self.retry_policy = dict(app.conf.task_publish_retry_policy or {})
        options = app.conf.broker_transport_options or {}
        self.client = redis_wire.WireClient(
            app.conf.broker_url,
            connect_timeout=options.get("socket_connect_timeout") or 2,
            timeout=options.get("socket_timeout") or 2,
        )
        self._origin: tuple[int, str] = (0, "")

    def origin(self) -> str:
        pid, name = self._origin
        if pid != os.getpid():  # the name holds the pid: gunicorn's workers are forked
            self._origin = pid, name = os.getpid(), anon_nodename()
        return name

    def __call__(self, **kwargs) -> str:
        name, queue = self.name, self.queue.name
        task_id = str(uuid.uuid4())
        kwargsrepr = (
            repr(kwargs)
            if all(type(value) is int for value in kwargs.values())
            else saferepr(kwargs, self.kwargsrepr_maxsize)
        )
        headers = {
            "lang": "py",
            "task": name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": "()",
            "kwargsrepr": kwargsrepr,
            "origin": self.origin(),
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }
        properties = {"correlation_id": task_id, "reply_to": self.app.thread_oid}
        body = ((), kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
        if signals.before_task_publish.receivers:
            signals.before_task_publish.send(
                sender=name,
                body=body,
                exchange="",
                routing_key=queue,
                declare=[self.queue],
                headers=headers,
                properties=properties,
                retry_policy=self.retry_policy,
            )
        properties.update(
            delivery_mode=2,
            delivery_info={"exchange": "", "routing_key": queue},
            priority=0,
            body_encoding="base64",
            delivery_tag=str(uuid.uuid4()),
        )
        envelope = {
            "body": base64.b64encode(orjson.dumps(body)).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
        self.client.command("LPUSH", queue, orjson.dumps(envelope))
        if signals.after_task_publish.receivers:
            signals.after_task_publish.send(
                sender=name, body=body, headers=headers, exchange="", routing_key=queue
            )
        return task_id


@functools.cache
def publisher(name: str) -> TaskPublisher | None:
    """The registered task's publisher in this process, or None where Celery publishes it:
    eager mode, or a ``refusal``. Decided once: the configuration is the process's."""
    from bookings_project.celery import app

    task = app.tasks[name]
    if app.conf.task_always_eager or refusal(task):
        return None
    return TaskPublisher(task)


def publish(task, **kwargs) -> None:
    """``task.delay(**kwargs)``: one ``LPUSH`` where ``publisher`` has one, else Celery's own
    (also inside a worker's task, where Celery records the parent and root task ids)."""
    fast = publisher(task.name)
    if fast is None or fast.app.current_worker_task is not None:
        task.delay(**kwargs)
    else:
        fast(**kwargs)
