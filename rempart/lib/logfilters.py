"""Logging filters: what a log line must never carry.

FHIR clients search with GET, so a search's criteria (a name, a birth date, an INS) travel in the
query string; the API accepts them there, as the standard and its client libraries do, and no
log line of ours keeps them: the request lines of the development server and of gunicorn's
access log (when one is turned on) lose their query string."""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"\?[^\s\"]*")


class NoQueryString(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _QUERY.sub("?…", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?…", a) if isinstance(a, str) else a
                                for a in record.args)  # fmt: skip
        elif isinstance(record.args, dict):  # gunicorn's access log: atoms by name
            atoms = {k: _QUERY.sub("?…", v) if isinstance(v, str) else v
                     for k, v in record.args.items()}  # fmt: skip
            if atoms.get("q"):
                atoms["q"] = "…"
            record.args = atoms
        return True
