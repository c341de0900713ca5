"""Secret values (docs/secrets.md): ``Secret``, whose repr/str is ``****``, the values this process has
held (masked in whatever the CLI prints), and the keyring service name a project's secrets live under.
"""

from __future__ import annotations

MASK = "****"

#: Every secret value this process has held. The CLI's error boundary masks them in whatever it
#: prints (messages, hints, --debug tracebacks), so a value that slipped into an exception on a
#: path nobody foresaw is still not shown (docs/secret-hygiene.md). Shorter values are not masked in free text:
#: masking "pw" would garble every message, and such a value protects nothing.
_HELD: set[str] = set()
MIN_MASKED_LENGTH = 4


def held_values() -> list[str]:
    """The secret values this process has held (long enough to mask), longest first."""
    return sorted((v for v in _HELD if len(v) >= MIN_MASKED_LENGTH), key=len, reverse=True)


class Secret:
    """A secret value: ``str()`` and ``repr()`` show ``****``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            _HELD.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def service_name(project: str, env: str | None) -> str:
    """``pgconnect:<project>`` for the base, ``pgconnect:<project>:<env>`` for an environment."""
    return f"pgconnect:{project}" if env is None else f"pgconnect:{project}:{env}"
