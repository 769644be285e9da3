from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"

    def ready(self):
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
