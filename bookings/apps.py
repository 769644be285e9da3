from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"

    def ready(self):
        from bookings_project.api.errors import register_error_statuses

        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .access import connect_signals
        from .viewsets import ERROR_STATUSES

        register_error_statuses(ERROR_STATUSES)
        connect_signals()  # a key changed or deleted is re-cached once that commits
