import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bookings_project.settings.production")

django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does

from bookings_project.api.wsgi import AcyclicWSGIHandler  # noqa: E402

application = AcyclicWSGIHandler()
