"""The client certificate libpq would send, audited before any connection.

libpq reads the certificate and key only when the server asks for them, deep in the handshake,
and reports a bad file as a connection failure — or lets OpenSSL prompt for an encrypted key's
passphrase on the terminal. pgconnect checks the same files first, by libpq's own rules
(``fe-secure-openssl.c``, ``initialize_SSL``), so a local problem is exit 3 naming the file and
the fix, before anything reaches the network:

- the certificate: ``sslcert``, else ``PGSSLCERT``, else ``~/.postgresql/postgresql.crt``; a
  default that does not exist means "no client certificate" (libpq goes on without one), a
  configured one that does not exist is an error here (the user meant to send it);
- the key: ``sslkey``, else ``PGSSLKEY``, else ``~/.postgresql/postgresql.key``; must exist, be a
  regular file, not be readable by group or others (0600; 0640 when root owns it), match the
  certificate, and be decryptable with ``sslpassword`` when encrypted. An ``engine:key`` name
  is left to libpq.

Nothing here prints or connects; ``sslpassword`` is only used to try the decryption.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgconnect.errors import ConfigError

EXPIRY_WARNING_DAYS = 30


@dataclass
class ClientCertificate:
    """What ``check`` reports as ``client_certificate`` (a stable JSON shape; docs/check.md)."""

    cert_file: str
    key_file: str
    subject: str
    issuer: str
    common_name: str | None
    not_after: str
    days_left: int
    key_matches: bool | None
    key_encrypted: bool | None
    sslpassword_available: bool
    #: Did the server ask for it? Known only after a login (pg_stat_ssl.client_dn) or from the
    #: server's refusal; None when no probe could tell.
    requested: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "cert_file": self.cert_file,
            "key_file": self.key_file,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.not_after,
            "days_left": self.days_left,
            "key_matches": self.key_matches,
            "key_encrypted": self.key_encrypted,
            "sslpassword_available": self.sslpassword_available,
            "requested": self.requested,
        }

    def warnings(self, user: str | None) -> list[str]:
        out: list[str] = []
        if self.days_left < 0:
            out.append(
                f"the client certificate {self.cert_file} expired {-self.days_left} days ago "
                f"({self.not_after}): the server will refuse it"
            )
        elif self.days_left <= EXPIRY_WARNING_DAYS:
            out.append(
                f"the client certificate {self.cert_file} expires in {self.days_left} days "
                f"({self.not_after}): renew it before the server starts refusing it"
            )
        if user and self.common_name is not None and self.common_name != user:
            out.append(
                f"the client certificate's CN is {self.common_name!r} but the user is {user!r}: "
                "servers with the cert method or clientcert=verify-full refuse that (unless "
                "pg_ident.conf maps them)"
            )
        return out


def _home_file(name: str, environ: Mapping[str, str]) -> Path | None:
    home = environ.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        return None
    return Path(home) / ".postgresql" / name


def _names(conn: Mapping[str, str], environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    explicit = conn.get("sslcert") or environ.get("PGSSLCERT")
    if explicit:
        return Path(explicit), True
    return _home_file("postgresql.crt", environ), False


def audit(
    conn: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> ClientCertificate | None:
    """Audit the client certificate libpq would send for CONN; None when there is none.

    Raises ConfigError (exit 3) for a certificate or key libpq could not use.
    """
    environ = os.environ if environ is None else environ
    if (conn.get("sslcertmode") or environ.get("PGSSLCERTMODE")) == "disable":
        return None  # libpq never sends one
    cert_path, explicit = _names(conn, environ)
    if cert_path is None:
        return None
    if not cert_path.exists():
        if not explicit:
            return None
        raise ConfigError(
            f"client certificate {cert_path} does not exist",
            hint="fix DB_SSLCERT (relative paths are relative to pgconnect.toml's folder), "
            "or unset it to connect without a client certificate",
        )
    from cryptography import x509

    try:
        data = cert_path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read client certificate {cert_path}: {exc.strerror or exc}",
            hint=f"make it readable by this user (chmod 644 {cert_path})",
        ) from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(
            f"client certificate {cert_path} is not a PEM certificate",
            hint="libpq reads PEM ('-----BEGIN CERTIFICATE-----'): convert it, e.g. "
            "openssl x509 -inform der -in FILE -out FILE.crt",
        ) from None

    key_name = conn.get("sslkey") or environ.get("PGSSLKEY")
    key_path = Path(key_name) if key_name else _home_file("postgresql.key", environ)
    sslpassword = conn.get("sslpassword") or ""
    result = _describe(cert, cert_path, key_path, bool(sslpassword))
    if key_name and ":" in key_name and not Path(key_name).exists():
        return result  # libpq: "engine:key" names a key inside an OpenSSL engine
    if key_path is None or not key_path.exists():
        raise ConfigError(
            f"client certificate {cert_path} has no private key: {key_path} does not exist",
            hint="set DB_SSLKEY to the key that belongs to the certificate",
        )
    _check_key_mode(key_path)
    try:
        key_pem = key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read private key {key_path}: {exc.strerror or exc}",
            hint=f"make it readable by this user only (chmod 600 {key_path})",
        ) from None
    key = _load_key(key_path, key_pem, sslpassword, result)
    if key is not None:
        from cryptography.hazmat.primitives import serialization

        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        result.key_matches = cert.public_key().public_bytes(
            enc, fmt
        ) == key.public_key().public_bytes(enc, fmt)
        if not result.key_matches:
            raise ConfigError(
                f"private key {key_path} does not belong to client certificate {cert_path}",
                hint="point DB_SSLKEY and DB_SSLCERT at the two files of the same pair",
            )
    return result


def _describe(cert: Any, cert_path: Path, key_path: Path | None, has_pw: bool) -> ClientCertificate:
    from cryptography.x509.oid import NameOID

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    not_after: dt.datetime = cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    return ClientCertificate(
        cert_file=str(cert_path),
        key_file=str(key_path) if key_path else "",
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=cn,
        not_after=not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        days_left=math.floor((not_after - now).total_seconds() / 86400),
        key_matches=None,
        key_encrypted=None,
        sslpassword_available=has_pw,
    )


def _check_key_mode(key_path: Path) -> None:
    """libpq's rule (fe-secure-openssl.c): a regular file, no group/other access when we own
    it; when root owns it, group read is allowed (u=rw,g=r)."""
    st = key_path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"private key {key_path} is not a regular file",
            hint="set DB_SSLKEY to the key file itself",
        )
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == os.geteuid() and mode & 0o077:
        raise ConfigError(
            f"private key {key_path} is readable by others (mode {mode:04o}); libpq refuses it",
            hint=f"chmod 600 {key_path}",
        )
    if st.st_uid == 0 and mode & 0o037:
        raise ConfigError(
            f"private key {key_path} owned by root has mode {mode:04o}; libpq refuses it",
            hint=f"chmod 640 {key_path}",
        )


def _load_key(key_path: Path, pem: bytes, sslpassword: str, result: ClientCertificate) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        result.key_encrypted = True
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"private key {key_path} is not a PEM private key this machine can read",
            hint="libpq reads PEM keys ('-----BEGIN PRIVATE KEY-----'): convert it with "
            "openssl pkey -in FILE -out FILE.key",
        ) from None
    else:
        result.key_encrypted = False
        return key
    if not sslpassword:
        raise ConfigError(
            f"private key {key_path} is encrypted and no sslpassword is set (libpq would have "
            "OpenSSL prompt for it on the terminal)",
            hint="store its passphrase: pgconnect secret put DB_SSLPASSWORD (or decrypt the key: "
            f"openssl pkey -in {key_path} -out KEY && chmod 600 KEY)",
        )
    try:
        return serialization.load_pem_private_key(pem, password=sslpassword.encode())
    except (ValueError, TypeError):
        raise ConfigError(
            f"the sslpassword does not decrypt private key {key_path}",
            hint="store the right passphrase: pgconnect secret put DB_SSLPASSWORD",
        ) from None
