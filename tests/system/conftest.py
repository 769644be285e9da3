"""The whole system as processes (tests/notifications' fixtures for them, shared as they are)."""

from tests.notifications.conftest import (  # noqa: F401
    broker_url,
    email_url,
    mail_dir,
    process_env,
)
