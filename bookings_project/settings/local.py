"""Development settings: ``make run``. DEBUG is on unless the environment says otherwise."""

import environ

from .base import *  # noqa: F403
from .base import CELERY_TASK_ALWAYS_EAGER, cache_settings
from .env import env_bool, env_broker, env_cache

DEBUG = env_bool("DEBUG", default=True)

# `make run` switches to Redis with CELERY_BROKER_URL alone: the rate-limit counters and the
# key cache go to the same Redis server (their keys never collide with the broker's), so
# every process counts one limit and Redis going down is seen by /readyz as the cache and the
# broker. CACHE_URL still wins when set. Production names both explicitly.
if env_cache("CACHE_URL") is None and not CELERY_TASK_ALWAYS_EAGER:
    _broker = env_broker("CELERY_BROKER_URL")
    if _broker.startswith(("redis://", "rediss://")):
        CACHES = {"default": cache_settings(environ.Env.cache_url_config(_broker))}
