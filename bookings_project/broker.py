"""Celery's Redis transport, publishing through one client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes
(``conn_or_acquire``), and building one copies redis-py's table of some 170 reply callbacks:
a fifth of a create's CPU went into enqueueing its confirmation email, most of it there. A
client holds no connection of its own (they come from the channel's pool), so one per channel
and pool does the same work. ``install`` makes it kombu's transport for ``redis://`` URLs
(called where the Celery app is made, before any connection): the URLs and the logs stay as
they were ("Connected to redis://…").
"""

import kombu.transport
from kombu.transport import redis as kombu_redis

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
