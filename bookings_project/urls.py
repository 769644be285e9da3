from django.contrib import admin
from django.urls import include, path, re_path

from bookings_project.api import health
from bookings_project.api.errors import api_not_found
from bookings_project.api.schema import RedocView, SchemaView, SwaggerView

urlpatterns = [
    path("v1/schema", SchemaView.as_view(), name="schema"),
    path("v1/", include("bookings.urls")),
    re_path(r"^v1(/.*)?$", api_not_found),
    path("docs", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("docs/redoc", RedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler400 = "bookings_project.api.errors.handler400"
handler403 = "bookings_project.api.errors.handler403"
handler404 = "bookings_project.api.errors.handler404"
handler500 = "bookings_project.api.errors.handler500"
