"""Settings, all from the environment. REMPART_ENV: production (the default), demo or test.

Production refuses to start without a master key, a secret key and an explicit database; the demo
creates its keys under REMPART_DATA_DIR. Nothing else differs between the postures.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from rempart.env import env_bool, env_int, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
REMPART_ENV = env_str("REMPART_ENV", "production")
if REMPART_ENV not in ("production", "demo", "test"):
    raise ImproperlyConfigured(f"REMPART_ENV must be production, demo or test, not {REMPART_ENV!r}")
PRODUCTION = REMPART_ENV == "production"

REMPART_DATA_DIR = Path(env_str("REMPART_DATA_DIR", str(BASE_DIR / "var")) or "var").resolve()


def _secret_key() -> str:
    key = env_secret("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY or SECRET_KEY_FILE must be set in production")
    path = REMPART_DATA_DIR / "secret_key"
    if not path.exists():
        REMPART_DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = (env_str("ALLOWED_HOSTS", "127.0.0.1,localhost") or "").split(",")

# The master key (KEK) never lives in the database. Production must name it explicitly; the demo
# and the tests fall back to REMPART_DATA_DIR/master.key, which `rempart keys init` creates (0600).
REMPART_MASTER_KEY = env_secret("REMPART_MASTER_KEY", owner_only=True)
REMPART_MASTER_KEY_PATH = REMPART_DATA_DIR / "master.key"
# Or the master key lives in a PKCS#11 token (an HSM; SoftHSM2 in the tests and as a demo
# option): an AES-256 key generated inside it, never extractable; the keysets are wrapped and
# unwrapped by the token itself. The PIN comes from the environment or a 0600 file.
REMPART_PKCS11_MODULE = env_str("REMPART_PKCS11_MODULE", "")
REMPART_PKCS11_TOKEN = env_str("REMPART_PKCS11_TOKEN", "rempart")
REMPART_PKCS11_PIN = env_secret("REMPART_PKCS11_PIN", owner_only=True)
REMPART_PKCS11_KEY = env_str("REMPART_PKCS11_KEY", "rempart-master")
if REMPART_PKCS11_MODULE and REMPART_MASTER_KEY:
    raise ImproperlyConfigured("set REMPART_PKCS11_MODULE or REMPART_MASTER_KEY, not both")
if REMPART_PKCS11_MODULE and not REMPART_PKCS11_PIN:
    raise ImproperlyConfigured("REMPART_PKCS11_PIN or REMPART_PKCS11_PIN_FILE must be set")
if PRODUCTION and not (REMPART_MASTER_KEY or REMPART_PKCS11_MODULE):
    raise ImproperlyConfigured(
        "REMPART_PKCS11_MODULE (an HSM) or REMPART_MASTER_KEY / REMPART_MASTER_KEY_FILE must be "
        "set in production (for the demo, set REMPART_ENV=demo)"
    )
REMPART_KEYS_DIR = REMPART_DATA_DIR / "keys"
# How often a process looks whether the keyset files changed (a rotation from the console).
REMPART_KEYS_RECHECK_SECONDS = env_int("REMPART_KEYS_RECHECK_SECONDS", 5)

_database_url = env_str("DATABASE_URL")
if _database_url is None:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL must be set in production")
    _database_url = f"sqlite:///{REMPART_DATA_DIR / 'rempart.sqlite3'}"
# Persistent connections, checked before each request reuses one: after a PostgreSQL restart
# or failover a worker reconnects instead of failing its first request.
DATABASES = {
    "default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
}
# A streaming replica for the heaviest reads (searches, charts): see rempart.lib.replica.
REMPART_REPLICA_URL = env_str("REMPART_REPLICA_URL", "")
if REMPART_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(REMPART_REPLICA_URL, conn_max_age=60,
                                                 conn_health_checks=True)  # fmt: skip
    DATABASE_ROUTERS = ["rempart.lib.replica.ReplicaRouter"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;"}

REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django_otp",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rempart.vault",
    "rempart.audit",
    "rempart.directory",
    "rempart.patients",
    "rempart.care",
    "rempart.access",
    "rempart.records",
    "rempart.imports",
    "rempart.exports",
    "rempart.breach",
    "rempart.fhir",
    "rempart.synth",
    "rempart.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "rempart.web.middleware.SessionRefreshMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "rempart.web.middleware.RequestContextMiddleware",
    "rempart.web.middleware.SecondFactorMiddleware",
    "rempart.web.middleware.AccessErrorsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Password failures lock the account name for a while (django-axes); the security officer can
# lift it early (`rempart.access.services.account_unlock`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "rempart.web.auth.LockAwareBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
# Per account name, from any address: a password guesser rotating addresses is stopped too. The
# price is that anyone can lock a name for 15 minutes; the second factor still guards it, and the
# security officer can lift the lock (axes' W006 warns about exactly this choice).
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked.html"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "rempart.web.middleware.client_address"  # one rule for the address

# Content Security Policy with nonces: no inline script or style without the page's nonce.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "rempart.urls"
WSGI_APPLICATION = "rempart.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rempart.web.context.session",
                "rempart.web.context.breach_clocks",
            ]
        },
    }
]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
OTP_LOGIN_URL = "otp-verify"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 15 * 60)
# The idle timeout slides with use, but the session is written at most once a minute (a write
# and its commit on every page cost more than the page's own reads): see SessionRefreshMiddleware.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "rempart" / "locale"]
LANGUAGES = [("fr", "Français"), ("en", "English")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = REMPART_DATA_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Logs carry ids and outcomes, never field values: no handler below formats request bodies.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_query": {"()": "rempart.lib.logfilters.NoQueryString"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["no_query"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes logs each attempt; the audit trail already records them. fontTools (fpdf2's
    # font subsetting, for the letters) logs every table it prunes, once per file. Request lines
    # (the development server's, gunicorn's access log) lose their query string: FHIR searches
    # carry their criteria there.
    "loggers": {
        "axes": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "filters": ["no_query"], "propagate": False},
        "gunicorn.access": {"filters": ["no_query"]},
    },
}

# Patient searches decrypt their candidates; past this many the criteria are too broad.
REMPART_SEARCH_MAX_CANDIDATES = env_int("REMPART_SEARCH_MAX_CANDIDATES", 2000)
REMPART_SEARCH_MAX_RESULTS = env_int("REMPART_SEARCH_MAX_RESULTS", 20)

# Audit trail: checkpoints are appended to this file (keep it on another disk or host in
# production, or point REMPART_AUDIT_SYSLOG at a collector, "host:port", RFC 5424 over UDP).
REMPART_AUDIT_CHECKPOINT_FILE = Path(
    env_str("REMPART_AUDIT_CHECKPOINT_FILE", str(REMPART_DATA_DIR / "audit" / "checkpoints.jsonl"))
    or ""
)
REMPART_AUDIT_SYSLOG = env_str("REMPART_AUDIT_SYSLOG", "")
REMPART_AUDIT_SYSLOG_EVENTS = env_bool("REMPART_AUDIT_SYSLOG_EVENTS", False)
REMPART_AUDIT_SEAL_INTERVAL = env_int("REMPART_AUDIT_SEAL_INTERVAL", 2)  # seconds
# The longest a transaction may hold an audit event before committing it (seconds): the sealer
# keeps looking that far back for late commits, and `verify` flags events sealed later than that.
REMPART_AUDIT_MAX_TRANSACTION = env_int("REMPART_AUDIT_MAX_TRANSACTION", 300)
# `rempart audit verify` warns when an event waits longer than this to be sealed.
REMPART_AUDIT_UNSEALED_WARNING = env_int("REMPART_AUDIT_UNSEALED_WARNING", 300)
# The PostgreSQL role the application logs in as, when it differs from the schema owner: the
# migrations grant it INSERT and SELECT only on the audit tables.
REMPART_DB_APP_ROLE = env_str("REMPART_DB_APP_ROLE", "")
# Access policy. A patient is in a user's care with a stay in the user's establishment (and
# service, for clinical roles) planned to start within UPCOMING days, running, or ended less than
# RECENT days ago; or when the user is their médecin traitant.
REMPART_CARE_UPCOMING_DAYS = env_int("REMPART_CARE_UPCOMING_DAYS", 7)
REMPART_CARE_RECENT_DAYS = env_int("REMPART_CARE_RECENT_DAYS", 30)
REMPART_BREAK_GLASS_HOURS = env_int("REMPART_BREAK_GLASS_HOURS", 4)
# Coming into care: this many patients known elsewhere in the group and new to the user's
# establishment, brought into care by one account within REMPART_CARE_NEW_HOURS, alert.
# More break-the-glass declarations than this by one account in 24 h alert the security officer.
REMPART_BREAK_GLASS_PER_DAY = env_int("REMPART_BREAK_GLASS_PER_DAY", 3)
REMPART_CARE_NEW_ALERT = env_int("REMPART_CARE_NEW_ALERT", 5)
REMPART_CARE_NEW_HOURS = env_int("REMPART_CARE_NEW_HOURS", 24)
# Read budgets: distinct patients (and searches) per hour, per day and per week (the 7 days
# up to now), by role. Past a budget the account must give its second factor again; past
# HARD_FACTOR x budget it is locked. A week is not 7 busy days: a slow scraper that keeps under
# the hourly budget all day, every day, meets the daily and then the weekly one.
REMPART_READ_BUDGETS = {
    "physician": (80, 300, 900), "nurse": (60, 240, 700), "secretary": (60, 240, 700),
    "pharmacist": (80, 300, 900), "dpo": (20, 60, 150), "security_officer": (20, 60, 150),
    "auditor": (20, 60, 150), "tech_admin": (0, 0, 0),
    # A system on the FHIR API: a laboratory or pharmacy of one clinic reads the day's patients
    # of its establishment, not the group's; a bulk need goes through the export controls.
    "api_client": (200, 1200, 3600),
}  # fmt: skip
# An account that has read more than PEER_FACTOR times the median of the others of its role
# today (and at least PEER_FLOOR patients) is alerted to the security officer, once a day.
REMPART_PEER_FACTOR = 4
REMPART_PEER_FLOOR = 40
REMPART_BUDGET_HARD_FACTOR = 1.5
REMPART_STEP_UP_MINUTES = env_int("REMPART_STEP_UP_MINUTES", 60)
REMPART_ACTIVATION_HOURS = env_int("REMPART_ACTIVATION_HOURS", 72)  # second-factor activation
REMPART_STEP_UP_FAILURES = 3  # wrong codes in a row at the step-up before the account locks
REMPART_ALERT_WEBHOOK = env_str("REMPART_ALERT_WEBHOOK", "")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "rempart@localhost")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend"
)

# Behind a reverse proxy that sets them: take the client address from X-Forwarded-For and the
# request id from X-Request-ID. Off by default (anyone could forge them).
# Reverse proxies in front of the application that append to X-Forwarded-For (0: none, the
# client address is the TCP peer). The client address is then the one the outermost trusted
# proxy saw, counted from the right (django-ipware): what a client writes itself on the left of
# the header is ignored. REMPART_TRUST_PROXY_HEADERS=1 (older setting) means one proxy.
REMPART_TRUSTED_PROXIES = env_int(
    "REMPART_TRUSTED_PROXIES", 1 if env_bool("REMPART_TRUST_PROXY_HEADERS", False) else 0
)
# Requests carrying a session cookie the server does not know, per client address and window:
# the first is recorded, past the limit they are refused (429) and the security officer told.
REMPART_UNKNOWN_SESSIONS_LIMIT = env_int("REMPART_UNKNOWN_SESSIONS_LIMIT", 30)
# The patients' self-check: PBKDF2 iterations of a published identity (the browser computes the
# same), and bucket requests allowed per client address and hour.
REMPART_SELFCHECK_ITERATIONS = env_int("REMPART_SELFCHECK_ITERATIONS", 600)
REMPART_SELFCHECK_PER_HOUR = env_int("REMPART_SELFCHECK_PER_HOUR", 120)
# The letters to the people concerned: a TrueType font for their names and addresses (Debian's
# fonts-dejavu-core); without it they are written in Latin-1 ("?" for what it lacks).
REMPART_LETTER_FONT = env_str(
    "REMPART_LETTER_FONT", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
)
REMPART_UNKNOWN_SESSIONS_WINDOW = env_int("REMPART_UNKNOWN_SESSIONS_WINDOW", 600)  # seconds
