"""Thin task entry points: ids in, a service call, their own retry policy (the outbox's)."""

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def send_email_task(*, outbox_id: int) -> None:
    # Retries are the outbox's: a failed send stays pending with a back-off, and the relay
    # re-enqueues it when due. A missing or already-sent row is a no-op.
    services.email_send(outbox_id=outbox_id)


@shared_task(ignore_result=True)
def relay_emails_task() -> None:
    services.email_relay()
