"""gunicorn's configuration in production:

    gunicorn -c python:bookings_project.gunicorn_conf bookings_project.wsgi

Behind a reverse proxy (nginx or a load balancer) that buffers requests and responses: the
sync workers then never wait on a slow client. From the environment, parsed strictly:

    GUNICORN_BIND       address to listen on (default 127.0.0.1:8000; a proxy on the host)
    WEB_CONCURRENCY     worker processes (default 2 x cores + 1)
    GUNICORN_ACCESS_LOG "-" for one line per request on stdout (default: none; the proxy logs)
"""

import gc
import os

from bookings_project import gunicorn_errors
from bookings_project.settings.env import env_int, env_str

bind = env_str("GUNICORN_BIND", default="127.0.0.1:8000")

# A request is mostly Python on the CPU with short waits on PostgreSQL and Redis; a sync worker
# sits idle through each wait, so a few more workers than cores keep the cores busy. Each one
# costs its memory and a database connection (CONN_MAX_AGE keeps it open): mind
# max_connections when raising it.
workers = env_int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1, minimum=1)
worker_class = "sync"

# The sync worker closes the connection after every response (gunicorn sends "Connection:
# close" whatever this says); the proxy keeps its clients' connections. The value applies if a
# threaded worker class is ever chosen, and must stay below the proxy's upstream idle timeout.
keepalive = 5

# A worker stuck this long on one request is killed and replaced (the database's lock timeout
# and the broker's socket timeouts are far shorter). On shutdown, requests in flight get as long.
timeout = 30
graceful_timeout = 30

# Recycle each worker after about 100,000 requests: bounds any slow growth of memory. The
# jitter keeps the workers from restarting together.
max_requests = 100_000
max_requests_jitter = 10_000

# Import the application once in the master and fork the workers from it: a worker starts (or
# is recycled) in milliseconds instead of re-importing Django, and shares the master's pages
# until it writes them. Safe because nothing connects at import time: the database, cache and
# broker connections are opened lazily, in each worker, at its first request. (Code changes
# then need a restart, not a HUP.)
preload_app = True

# The heartbeat file each worker touches: in memory, not on a disk that may stall (gunicorn
# creates and unlinks it at once, so a shared directory is fine).
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None

# No runtime control socket (gunicorn 25+, at a per-user default path that two instances on
# one host would share): the service is managed by its supervisor's signals.
control_socket_disable = True

accesslog = env_str("GUNICORN_ACCESS_LOG", default=None)
errorlog = "-"
loglevel = "info"


# The cyclic garbage collector, tuned for a request server (measured in bench/README.md):
# a request allocates thousands of short-lived containers (a page of rows, its JSON), so the
# default first-generation threshold of 700 runs a collection several times per request. Most
# of that garbage is freed by reference counting anyway; the collector only has to find cycles.
GC_THRESHOLDS = (50_000, 20, 100)


def when_ready(server):
    # In the master, after the application is loaded and before any worker forks: everything
    # loaded so far lives as long as the process. Frozen, it is never scanned again, so a
    # worker's full collections walk only what its requests made (shorter pauses, the tail
    # latency), and do not write to the pages the workers share with the master.
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    gc.set_threshold(*GC_THRESHOLDS)
    # Requests gunicorn cannot parse are answered in the API's JSON envelope, not HTML.
    gunicorn_errors.install()
