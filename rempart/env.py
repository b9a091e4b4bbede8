"""Typed settings helpers that read the environment and fail loudly (healthchecks' envsecret)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_secret(name: str, *, owner_only: bool = False) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE; never both. With `owner_only`,
    a file that its group or others may read (or write) is refused, wherever it lies."""
    direct = env_str(name)
    path = env_str(f"{name}_FILE")
    if direct and path:
        raise ImproperlyConfigured(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            if owner_only and stat.S_IMODE(os.stat(path).st_mode) & 0o077:
                raise ImproperlyConfigured(
                    f"{name}_FILE={path} must be readable by its owner only (0600)"
                )
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={path} cannot be read: {exc.strerror}"
            ) from None
    return direct
