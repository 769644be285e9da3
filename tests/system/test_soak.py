"""A short soak in ``make test``: bench/soak.py's own code for 20 s against the production
configuration (gunicorn with its configuration file, a Celery worker, Redis as cache and
broker, the test database on PostgreSQL, an SMTP sink), then the consistency check."""

import pytest

from bench.soak import soak_env, soak_print, soak_run
from tests.smtp_sink import SmtpSink

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SECONDS = 20


def test_a_short_soak_answers_no_5xx_and_leaves_consistent_data(process_env, broker_url, tmp_path):
    with SmtpSink() as sink:
        env = soak_env(
            database_url=process_env["DATABASE_URL"],
            cache_url=broker_url,  # our one Redis database: the cache's keys and the broker's
            broker_url=broker_url,
            email_url=sink.url,
        )
        result = soak_run(env=env, logs=tmp_path, sink=sink, seconds=SECONDS, threads=4)
    soak_print(result)  # shown with -s, or when the test fails
    counts = result.counts
    assert counts.server_errors == 0, counts.outcomes
    assert not counts.unexpected, counts.unexpected
    assert result.drain.pending_left == 0
    assert result.report.ok, result.report.violations
    # Enough of each kind happened for the check to mean something.
    for outcome in [
        "create 201",
        "create_keyed 201",
        "replay 200",
        "cancel 200",
        "reschedule 201",
        "patch_email 200",
        "confirm 200",
        "get 200",
        "list 200",
    ]:
        assert counts.outcomes[outcome] > 0, outcome
    assert result.drain.received == result.drain.sent > 20
