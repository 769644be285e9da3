"""Threads released together, for tests of concurrent requests on a real database.

Such tests commit for real (``django_db(transaction=True)``): each thread has its own
database connection, closed when it is done.
"""

import threading
from collections.abc import Callable

from django.db import connections
from rest_framework.test import APIClient


def run_together(count: int, request: Callable[[int], object]) -> list:
    """Call ``request(i)`` from ``count`` threads released at once; return the responses."""
    barrier = threading.Barrier(count)
    responses: list = [None] * count
    errors: list = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            responses[index] = request(index)
        except Exception as exc:  # surfaced below, with the thread's own traceback
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return responses


def client_for(secret: str) -> APIClient:
    """A client of its own (one per thread: a test client is not shared between threads)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def outcome(response) -> str:
    """A response as one word to count: ``"200"``, ``"409 invalid_transition"``, ``"500"``."""
    if 400 <= response.status_code < 500:
        return f"{response.status_code} {response.json()['error']['code']}"
    return str(response.status_code)
