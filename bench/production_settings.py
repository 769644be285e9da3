"""The production settings as they are, plus the baseline view: what bench/wrk_bench.py serves.

Everything production requires comes from the environment the bench sets (SECRET_KEY,
DATABASE_URL, ALLOWED_HOSTS, CACHE_URL, CELERY_BROKER_URL, EMAIL_URL; SECURE_SSL_REDIRECT=false
for plain HTTP; API_RATE_LIMIT high enough that the limiter counts every request but never
refuses one).
"""

from bookings_project.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
