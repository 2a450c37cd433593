"""Settings for the social service, read from the environment.

See README.md "Configuration" for every variable. Development defaults run with
no services at all; production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS,
DATABASE_URL and REDIS_URL.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from social.config import cache_config, channel_layers_config, database_config, env_bool, env_int, env_list
from social.proxy import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ

DEBUG = env_bool(ENV, "DEBUG", default=False)

SECRET_KEY = ENV.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list(ENV, "ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
# (addresses or networks); from anyone else those headers are dropped.
TRUSTED_PROXIES = parse_networks(env_list(ENV, "TRUSTED_PROXIES", []))
CSRF_TRUSTED_ORIGINS = env_list(ENV, "CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "social",
    "notifications",
    "dm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "social.urls"
ASGI_APPLICATION = "social.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_config(ENV, BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = cache_config(ENV)
CHANNEL_LAYERS = channel_layers_config(ENV)
REDIS_URL = ENV.get("REDIS_URL", "")
# Prefix of the realtime keys (flood counters, socket registry) in Redis.
REDIS_KEY_PREFIX = ENV.get("CACHE_PREFIX", "social")

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    # Throttle password guessing: per IP and per login name.
    "login_failed": ENV.get("LOGIN_FAILED_RATE", "10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
}
EMAIL_BACKEND = ENV.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = ENV.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int(ENV, "EMAIL_PORT", 25)
EMAIL_HOST_USER = ENV.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = ENV.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool(ENV, "EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int(ENV, "EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = ENV.get("DEFAULT_FROM_EMAIL", "Social <noreply@localhost>")

# Background jobs (email digests, pruning, settling mark-all-read): Django's task API (django.tasks in
# Django 6, the django-tasks backport here) on the ORM backend, so they need no
# service beyond the database; workers: `manage.py jobs_worker` (README).
TASKS = {"default": {"BACKEND": ENV.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}

# Grouping, email digests and retention (docs/notifications.md).
ATTENTION = {
    # Links in emails are this origin plus the item's path.
    "SITE_URL": ENV.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/"),
    # A new user's email delay; 0 turns email off by default.
    "EMAIL_DELAY_MINUTES": env_int(ENV, "EMAIL_DELAY_MINUTES", 10),
    # How often the digest sweep looks for items that are due.
    "DIGEST_SWEEP_SECONDS": env_int(ENV, "DIGEST_SWEEP_SECONDS", 60),
    # Read (and superseded) notifications older than this are deleted.
    "RETENTION_DAYS": env_int(ENV, "NOTIFICATION_RETENTION_DAYS", 90),
    "PRUNE_EVERY_SECONDS": env_int(ENV, "NOTIFICATION_PRUNE_SECONDS", 3600),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security headers. Scripts come only from our static files: no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Database sessions, loaded by one hand-written statement (social/sessions.py).
SESSION_ENGINE = "social.sessions"
if not DEBUG:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool(ENV, "SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int(ENV, "SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Realtime limits (see README "Limits"); every one is a setting.
REALTIME = {
    # Largest client frame the app parses; daphne's --websocket_max_message_size
    # (Makefile, production docs) cuts larger frames off before they reach us.
    "MAX_FRAME_BYTES": env_int(ENV, "WS_MAX_FRAME_BYTES", 32 * 1024),
    "RATE_PER_SECOND": env_int(ENV, "WS_RATE_PER_SECOND", 10),
    "RATE_BURST": env_int(ENV, "WS_RATE_BURST", 20),
    "USER_RATE_PER_SECOND": env_int(ENV, "WS_USER_RATE_PER_SECOND", 30),
    "RATE_STRIKES_BEFORE_CLOSE": env_int(ENV, "WS_RATE_STRIKES", 5),
    "MAX_SOCKETS_PER_USER": env_int(ENV, "WS_MAX_SOCKETS_PER_USER", 20),
    # Bytes the server may hold for one socket that its client has not read;
    # beyond, the socket is closed with 4008 and its client resumes.
    "MAX_BUFFERED_BYTES": env_int(ENV, "WS_MAX_BUFFERED_BYTES", 1024 * 1024),
    # How long a resume replay waits for a slow client to take what it was sent.
    "DRAIN_TIMEOUT_SECONDS": 30,
    # Sockets a user may open per minute (over all processes): connect/close
    # churn would otherwise send every room member a join and a leave per cycle.
    "CONNECTS_PER_MINUTE": env_int(ENV, "WS_CONNECTS_PER_MINUTE", 120),
    # Handshakes of one process doing their work at once; the others wait their
    # turn, and one that waited this long is refused before any work, to be
    # retried later: it could not finish before daphne's connect timeout
    # (social/serve.py). See social/realtime/admission.py. The patience is long enough
    # for one process to serve a restart's whole crowd of tabs from one queue: a
    # waiting handshake costs little, a refused one its parsing again after a
    # back-off, and the back-offs left the process idle at the storm's end (5,000
    # sockets: 128 s with 25 s, 65 s with 55 s; docs/benchmarks.md).
    "HANDSHAKES_IN_FLIGHT": env_int(ENV, "WS_HANDSHAKES_IN_FLIGHT", 64),
    "HANDSHAKE_PATIENCE_MS": env_int(ENV, "WS_HANDSHAKE_PATIENCE_MS", 55000),
    # Chat messages a socket has read but not yet stored; at this many it stops
    # reading until they are (they are stored in batches meanwhile).
    "PENDING_MESSAGES_PER_SOCKET": env_int(ENV, "WS_PENDING_MESSAGES", 32),
    # A room's sockets in one process store and publish their messages
    # together, one statement and one publish per tick (dm/group_commit.py).
    "GROUP_COMMIT": env_bool(ENV, "WS_GROUP_COMMIT", True),
    "TYPING_INTERVAL_SECONDS": 2.0,
    "RESUME_LIMIT": 500,
    # How often a room socket refreshes its presence row (< PRESENCE_STALE_SECONDS).
    "HEARTBEAT_SECONDS": env_int(ENV, "WS_HEARTBEAT_SECONDS", 20),
    # How often every socket re-checks its session and re-joins its groups: a
    # safety net behind the revocation and layer-recovered events.
    "SESSION_RECHECK_SECONDS": env_int(ENV, "WS_SESSION_RECHECK_SECONDS", 300),
    "PRESENCE_STALE_SECONDS": env_int(ENV, "WS_PRESENCE_STALE_SECONDS", 60),
    # A room hears that a user left this long after their last socket closed,
    # and not at all if they are back by then (a reload, a reconnect, churn).
    "PRESENCE_LEAVE_GRACE_MS": env_int(ENV, "WS_PRESENCE_LEAVE_GRACE_MS", 2000),
}

# Writes over HTTP per user (social/throttle.py); "N/s|m|h|d". Beyond, the
# form answers 429 with an error and nothing is written.
# A count django-ratelimit cannot read (a key evicted mid-increment) allows the write.
RATELIMIT_FAIL_OPEN = True
WRITE_RATE_LIMITS = {
    "post": ENV.get("RATE_POSTS", "10/m"),
    "comment": ENV.get("RATE_COMMENTS", "20/m"),
    "room_create": ENV.get("RATE_ROOMS", "10/h"),
    "invite": ENV.get("RATE_INVITES", "30/h"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": ENV.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own "django" console handler (DEBUG only) printed every
        # django.request warning a second time next to the root handler.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
