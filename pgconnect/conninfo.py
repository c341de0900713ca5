"""Connection strings: parsing DB_URL, building URI / key=value / env / JSON, redaction (SPEC §4).

Placeholder until issue #4 lands: ``parse`` delegates to libpq through psycopg.
"""

from __future__ import annotations

import re

from pgconnect.errors import ConfigError

_URI_USERINFO = re.compile(r"(postgres(?:ql)?://[^:/?#@]*:)[^@/?#]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, *secrets: str) -> str:
    """Mask passwords in TEXT: URI userinfo, password=…, and every given secret value."""
    text = _URI_USERINFO.sub(r"\1****@", text)
    text = _KV_PASSWORD.sub(r"\1****", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def parse(dsn: str) -> dict[str, str]:
    """Split a URI or key=value connection string into libpq keywords."""
    import psycopg

    try:
        return {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"DB_URL is not a valid connection string: {redact(str(exc), dsn)}"
        ) from None
