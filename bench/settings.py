"""Settings for the benchmark server: the local settings, DEBUG off, plus a baseline view."""

from bookings_project.settings.local import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
API_RATE_LIMIT = 10_000_000  # measure the API, not the limiter's 429s
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
