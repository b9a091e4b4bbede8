"""The `rempart` console command: the project's manage.py."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rempart.settings")
    if len(args) > 1 and args[1] == "demo":
        # `rempart demo` is the demo by definition; every other command defaults to production.
        os.environ.setdefault("REMPART_ENV", "demo")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(args)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"rempart: configuration error: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
