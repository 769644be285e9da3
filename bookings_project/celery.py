import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bookings_project.settings.local")

app = Celery("bookings_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
