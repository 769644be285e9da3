from celery import shared_task

from .idempotency import idempotency_keys_purge


@shared_task(ignore_result=True)
def purge_idempotency_keys_task() -> None:
    idempotency_keys_purge()
