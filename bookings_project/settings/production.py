"""Production settings: a real secret, HTTPS only, PostgreSQL, Redis.

Everything that must not default in production is required here: start-up fails with a
message naming the variable that is missing or malformed.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import CACHES, CELERY_TASK_ALWAYS_EAGER, DATA_DIR, DATABASES, EMAIL_BACKEND
from .env import POSTGRESQL_ENGINE, env_bool, env_int, env_list, env_str


def _required(name: str):
    raise ImproperlyConfigured(f"Environment variable {name} is required.")


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("Environment variable SECRET_KEY must be 50+ random characters.")
if DATABASES["default"]["ENGINE"] != POSTGRESQL_ENGINE:
    raise ImproperlyConfigured("Environment variable DATABASE_URL must point at PostgreSQL.")
# No silent fallback to the development backends: per-process rate-limit counters, emails
# sent inside the request, or on the console, are not a production service.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=None) or _required("ALLOWED_HOSTS")
# gunicorn's workers are long-lived: keep each one's connection open between requests.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
if CACHES["default"]["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
    raise ImproperlyConfigured("Environment variable CACHE_URL must point at Redis (redis://).")
if CELERY_TASK_ALWAYS_EAGER:
    raise ImproperlyConfigured("Environment variable CELERY_BROKER_URL is required (redis://).")
if EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
    raise ImproperlyConfigured("Environment variable EMAIL_URL must be an smtp:// URL.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STATIC_ROOT = env_str("STATIC_ROOT", default=str(DATA_DIR / "static"))
WHITENOISE_USE_FINDERS = False  # serve what `collectstatic` gathered, compressed and hashed
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
