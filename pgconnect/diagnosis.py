"""What each libpq connection failure means: stage, exit status and a hint true for that cause.

One table (``RULES``) read by ``connect.classify()``. A row matches one family of messages: the
ones libpq writes itself (``fe-connect.c``, ``fe-auth.c``/``fe-auth-scram.c``,
``fe-secure-openssl.c``/``fe-secure-common.c``) and the server's ``FATAL`` lines libpq relays
(``auth.c``, ``postinit.c``, ``postmaster.c``). Each row carries one example per message it is
meant for, copied from libpq 15–18's sources (``%s`` filled in), so a test can prove every message
lands on its row and none falls through to the generic "exit 5, no hint".

Order matters, first match wins (and ``classify`` looks for a rule's match in every attempt libpq
reports, so a decisive reason on a later host beats "Connection refused" on the first):
1. local files and options libpq could not use (exit 3: nothing reached the server, the fix is
   here);
2. ``target_session_attrs`` (no host satisfied it, even if some hosts were down);
3. the client's own authentication requirements (``channel_binding``, ``require_auth``,
   ``sslcertmode``), which libpq checks on a live connection;
4. dns, tcp;
5. TLS: the server's answer to SSLRequest, certificates, alerts;
6. a dropped connection (stage: wherever libpq was);
7. the server's refusals (pg_hba, client certificates, password, role, database, capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgconnect.errors import (
    CommandError,
    ConfigError,
    NetworkError,
    PgconnectError,
    RejectedError,
    TLSError,
)


@dataclass(frozen=True)
class Rule:
    """One family of libpq messages: a regular expression (case-insensitive) and its meaning.

    ``stage`` None means "the stage libpq had reached" (a dropped connection).
    """

    pattern: str
    stage: str | None
    error: type[PgconnectError]
    hint: str
    source: str
    examples: tuple[str, ...]
    #: The connection was dropped: during the TLS handshake that is the TLS requirement unmet.
    dropped: bool = False


RULES_PASSWORD_HINT = (
    "check the password: pgconnect secret put DB_PASSWORD (and DB_USERNAME: under password "
    "authentication PostgreSQL reports a role that does not exist the same way)"
)

RULES: tuple[Rule, ...] = (
    # ---------------------------------------------------------------- 1. local files and options
    Rule(
        r"certificate present, but not private key file",
        "tls",
        ConfigError,
        "the client certificate's key file is missing: set DB_SSLKEY to the key that belongs to "
        "DB_SSLCERT (libpq looks for ~/.postgresql/postgresql.key by default)",
        "fe-secure-openssl.c",
        ('certificate present, but not private key file "/home/u/.postgresql/postgresql.key"',),
    ),
    Rule(
        r"private key file .* has group or world access|private key file .* is not a regular file|"
        r"could not stat private key file",
        "tls",
        ConfigError,
        "libpq refuses a key file others can read: chmod 600 the file named by DB_SSLKEY "
        "(0640 is allowed only when root owns it)",
        "fe-secure-openssl.c",
        (
            'private key file "/k.key" has group or world access; file must have permissions '
            "u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or "
            "less if owned by root",
            'private key file "/k.key" is not a regular file',
            'could not stat private key file "/k.key": No such file or directory',
        ),
    ),
    Rule(
        r"certificate does not match private key file|could not load private key file .*"
        r"(key values mismatch|mismatch)",
        "tls",
        ConfigError,
        "DB_SSLKEY is not the key of the certificate in DB_SSLCERT: point both at the files of "
        "the same pair",
        "fe-secure-openssl.c",
        (
            'certificate does not match private key file "/k.key": key values mismatch',
            'could not load private key file "/k.key": key values mismatch',
        ),
    ),
    Rule(
        r"could not load private key file .*(bad decrypt|decrypt|bad password|"
        r"interrupted or cancelled|processing error)",
        "tls",
        ConfigError,
        "the client key is encrypted and no (or a wrong) passphrase was given: "
        "pgconnect secret put DB_SSLPASSWORD (pgconnect never lets OpenSSL prompt)",
        "fe-secure-openssl.c",
        ('could not load private key file "/k.key": bad decrypt',),
    ),
    Rule(
        r"could not load private key file|could not (open|read) certificate file|"
        r"could not (load|initialize) SSL engine|could not (read|load) private SSL key .* from "
        r"engine",
        "tls",
        ConfigError,
        "libpq could not use the client certificate or key: check that DB_SSLCERT and DB_SSLKEY "
        "name readable PEM files of the same pair",
        "fe-secure-openssl.c",
        (
            'could not load private key file "/k.key": unsupported',
            'could not open certificate file "/c.crt": Permission denied',
            'could not read certificate file "/c.crt": no start line',
            'could not load SSL engine "e": invalid engine',
            'could not read private SSL key "k" from engine "e": failed',
        ),
    ),
    Rule(
        r"could not read root certificate file|could not load system root certificate paths|"
        r"could not get home directory to locate root certificate file|"
        r"could not (open|load) SSL certificate revocation list|could not read crl",
        "tls",
        ConfigError,
        "libpq could not read the CA file: check that DB_SSLROOTCERT names a readable PEM file "
        "of CA certificates (for sslrootcert=system, install the system's CA bundle, e.g. "
        "ca-certificates)",
        "fe-secure-openssl.c",
        (
            'could not read root certificate file "/r.crt": no certificate or crl found',
            "could not load system root certificate paths: no such file",
            "could not get home directory to locate root certificate file",
        ),
    ),
    Rule(
        r"weak sslmode .* may not be used with sslnegotiation=direct",
        "tls",
        ConfigError,
        "sslnegotiation=direct starts TLS at once, so it needs sslmode=require, verify-ca or "
        "verify-full: raise DB_SSLMODE or drop DB_SSLNEGOTIATION",
        "fe-connect.c",
        (
            'weak sslmode "prefer" may not be used with sslnegotiation=direct (use "require", '
            '"verify-ca", or "verify-full")',
        ),
    ),
    Rule(
        r"weak sslmode .* may not be used with sslrootcert=system",
        "tls",
        ConfigError,
        "sslrootcert=system is only safe with host-name checks: use DB_SSLMODE=verify-full",
        "fe-connect.c",
        ('weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")',),
    ),
    Rule(
        r"require_auth method .* (cannot be mixed|is specified more than once)|"
        r"negative require_auth method",
        None,
        ConfigError,
        "DB_REQUIRE_AUTH lists methods to allow (scram-sha-256,password) or to refuse "
        "(!password,!md5), not both, each once",
        "fe-connect.c",
        (
            'negative require_auth method "!md5" cannot be mixed with non-negative methods',
            'require_auth method "md5" cannot be mixed with negative methods',
            'require_auth method "md5" is specified more than once',
        ),
    ),
    Rule(
        r"invalid value .* for (minimum|maximum) SSL protocol version|"
        r"invalid SSL protocol version range|could not set (minimum|maximum) SSL protocol version",
        "tls",
        ConfigError,
        "DB_SSL_MIN_PROTOCOL_VERSION / DB_SSL_MAX_PROTOCOL_VERSION take TLSv1, TLSv1.1, TLSv1.2 or "
        "TLSv1.3, minimum not above maximum",
        "fe-connect.c",
        (
            'invalid value "TLSv9" for minimum SSL protocol version',
            "invalid SSL protocol version range",
        ),
    ),
    Rule(
        r"host name must be specified for a verified SSL connection|host name must be specified",
        "tls",
        ConfigError,
        "sslmode=verify-full checks the certificate against DB_HOST: set DB_HOST to the server's "
        "name (DB_HOSTADDR alone gives libpq nothing to compare)",
        "fe-secure-common.c",
        ("host name must be specified for a verified SSL connection",),
    ),
    Rule(
        r"could not match \d+ (host names|port numbers) (to|with) \d+|could not parse network "
        r"address|"
        r"invalid port number|Unix-domain socket path .* is too long|"
        r"could not translate Unix-domain socket path",
        "dns",
        ConfigError,
        "DB_HOST, DB_HOSTADDR and DB_PORT must be lists of the same length (or one port for all), "
        "hostaddr numeric IP addresses, ports 1-65535, socket paths short",
        "fe-connect.c",
        (
            "could not match 2 host names to 1 hostaddr values",
            "could not match 3 port numbers to 2 hosts",
            "could not match 1 host names with 2 hostaddr values",
            'could not parse network address "db.example.com": Name or service not known',
            'invalid port number: "abc"',
            'Unix-domain socket path "/x" is too long (maximum 107 bytes)',
        ),
    ),
    Rule(
        r"service file .* not found|definition of service .* not found|"
        r"syntax error in service file|nested service specifications|line \d+ too long in service|"
        r"LDAP URL|LDAP lookup|LDAP server|LDAP structure",
        "dns",
        ConfigError,
        "the connection service is missing or broken: check DB_SERVICE and the service file "
        "(PGSERVICEFILE, ~/.pg_service.conf, PGSYSCONFDIR/pg_service.conf)",
        "fe-connect.c",
        (
            'definition of service "prod" not found',
            'service file "/etc/pg_service.conf" not found',
            'syntax error in service file "/s.conf", line 3',
            "no entry found on LDAP lookup",
        ),
    ),
    Rule(
        r"invalid connection option|missing \"=\" after|unterminated quoted string|"
        r"invalid (integer )?value .* for connection option|invalid \S+ value: |"
        r"invalid \"\S+\" value|invalid URI|invalid percent-encoded token|forbidden value %00|"
        r"is greater than|invalid SCRAM (client|server) key|in URI|URI query parameter|"
        r"unexpected spaces found in|connection info string size exceeds|"
        r"could not determine encoding for locale",
        "dns",
        ConfigError,
        "a connection parameter has a value libpq does not accept: check the DB_* variables "
        "(pgconnect explain shows them all)",
        "fe-connect.c",
        (
            'invalid connection option "sslfoo"',
            'invalid sslmode value: "strict"',
            'invalid integer value "x" for connection option "connect_timeout"',
            'invalid "load_balance_hosts" value: "maybe"',
            '"min_protocol_version" is greater than "max_protocol_version"',
            'IPv6 host address may not be empty in URI: "postgresql://[]"',
            'unexpected spaces found in "a b", use percent-encoded spaces (%20) instead',
        ),
    ),
    Rule(
        r"could not look up local user ID|local user with ID \d+ does not exist",
        "dns",
        ConfigError,
        "libpq could not find this machine's user name to log in as: set DB_USERNAME",
        "fe-auth.c",
        ("local user with ID 1001 does not exist",),
    ),
    Rule(
        r"requirepeer parameter is not supported",
        None,
        ConfigError,
        "requirepeer only works on Unix sockets of systems that report the peer's user: "
        "drop DB_REQUIREPEER here",
        "fe-connect.c",
        ("requirepeer parameter is not supported on this platform",),
    ),
    Rule(
        r"server requires OAuth authentication, but oauth_issuer and oauth_client_id|"
        r"no OAuth flows are available",
        "auth",
        ConfigError,
        "the server wants OAuth: set DB_OAUTH_ISSUER and DB_OAUTH_CLIENT_ID (and install the "
        "libpq-oauth package), or ask for a password login",
        "fe-auth-oauth.c",
        (
            "server requires OAuth authentication, but oauth_issuer and oauth_client_id are not "
            "both set",
        ),
    ),
    # ---------------------------------------------------------------- 2. target_session_attrs
    Rule(
        r"session is read-only|server is in hot standby mode",
        "auth",
        RejectedError,
        "no host accepted writes: every server reached is a standby or read-only "
        "(target_session_attrs=read-write/primary); add the primary to DB_HOST, or use "
        "target_session_attrs=any/prefer-standby for reading",
        "fe-connect.c",
        ("session is read-only", "server is in hot standby mode"),
    ),
    Rule(
        r"session is not read-only|server is not in hot standby mode",
        "auth",
        RejectedError,
        "no standby found: every server reached is a primary (target_session_attrs=standby/"
        "read-only); add a standby to DB_HOST, or use target_session_attrs=prefer-standby",
        "fe-connect.c",
        ("session is not read-only", "server is not in hot standby mode"),
    ),
    # ---------------------------------------------------------------- 3. the client's requirements
    Rule(
        r"channel binding required, but SSL not in use",
        "auth",
        TLSError,
        "channel_binding=require only works over TLS: use sslmode=require or stronger "
        "(verify-full is best), or drop DB_CHANNEL_BINDING",
        "fe-auth.c",
        ("channel binding required, but SSL not in use",),
    ),
    Rule(
        r"channel binding required but not supported by server's authentication request|"
        r"channel binding is required, but server did not offer an authentication method|"
        r"channel binding required, but server authenticated client without channel binding",
        "auth",
        RejectedError,
        "channel_binding=require needs SCRAM (scram-sha-256 in pg_hba.conf and a password stored "
        "as SCRAM): this role logs in with md5, a cleartext password or trust, or a pooler sits "
        "in between; re-set the password under password_encryption=scram-sha-256 (ALTER ROLE … "
        "PASSWORD), or drop DB_CHANNEL_BINDING",
        "fe-auth.c",
        (
            "channel binding required but not supported by server's authentication request",
            "channel binding is required, but server did not offer an authentication method "
            "that supports channel binding",
            "channel binding required, but server authenticated client without channel binding",
        ),
    ),
    Rule(
        r"server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection",
        "tls",
        TLSError,
        "the server offered channel binding on a plaintext connection, which a real server "
        "never does: something in the middle is tampering; use sslmode=verify-full",
        "fe-auth.c",
        ("server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection",),
    ),
    Rule(
        r"authentication method requirement .* failed|server did not complete authentication",
        "auth",
        RejectedError,
        "the server asked for an authentication method DB_REQUIRE_AUTH does not allow: change "
        "DB_REQUIRE_AUTH, or the server's pg_hba.conf method (or the way the role's password is "
        "stored: md5 vs scram-sha-256)",
        "fe-auth.c",
        (
            'authentication method requirement "scram-sha-256" failed: server requested a '
            "hashed password",
            'authentication method requirement "password" failed: server requested SASL '
            "authentication",
            'authentication method requirement "scram-sha-256" failed: server did not complete '
            "authentication",
        ),
    ),
    Rule(
        r"server did not request an SSL certificate|"
        r"server accepted connection without a valid SSL certificate",
        "auth",
        TLSError,
        "sslcertmode=require: the server neither asked for nor checked a client certificate "
        "(no ssl_ca_file on the server): configure the server, or drop DB_SSLCERTMODE",
        "fe-auth.c",
        (
            "server did not request an SSL certificate",
            "server accepted connection without a valid SSL certificate",
        ),
    ),
    Rule(
        r"requirepeer specifies",
        "auth",
        RejectedError,
        "the server's socket belongs to another operating-system user than DB_REQUIREPEER "
        "names: a different server may own this socket; check DB_HOST (socket folder) and "
        "DB_PORT, or DB_REQUIREPEER",
        "fe-connect.c",
        ('requirepeer specifies "postgres", but actual peer user name is "nobody"',),
    ),
    Rule(
        r"could not get peer credentials",
        "auth",
        RejectedError,
        "requirepeer could not learn who runs the server on this socket: check DB_HOST",
        "fe-connect.c",
        ("could not get peer credentials: Operation not permitted",),
    ),
    # ---------------------------------------------------------------- 4. dns, tcp
    Rule(
        r"could not translate host name|Name or service not known|nodename nor servname|"
        r"Temporary failure in name resolution|No address associated with hostname",
        "dns",
        NetworkError,
        "check DB_HOST: the name does not resolve from this machine",
        "fe-connect.c",
        ('could not translate host name "db.invalid" to address: Name or service not known',),
    ),
    Rule(
        r"timeout expired|timed out",
        "tcp",
        NetworkError,
        "the server did not answer in time: check the host, port, firewall or security group, "
        "or raise --timeout",
        "fe-connect.c",
        ("timeout expired", "Connection timed out"),
    ),
    Rule(
        r"Connection refused",
        "tcp",
        NetworkError,
        "nothing listens there: check DB_HOST and DB_PORT, and that the server is running",
        "fe-connect.c",
        ('connection to server at "h", port 1 failed: Connection refused',),
    ),
    Rule(
        r'connection to server on socket ".*" failed: (No such file or directory|'
        r"Permission denied|Connection refused)",
        "tcp",
        NetworkError,
        "no server socket there: check DB_HOST (the socket folder) and DB_PORT, and that the "
        "server is running",
        "fe-connect.c",
        ('connection to server on socket "/tmp/.s.PGSQL.1" failed: No such file or directory',),
    ),
    Rule(
        r"No route to host|Network is unreachable|could not connect to server|"
        r"Connection reset by peer|Cannot assign requested address|could not create socket|"
        r"could not set socket|could not get socket error status|"
        r"could not get client address from socket|could not send (SSL|GSSAPI) negotiation "
        r"packet|could not send startup packet|could not send data to server|"
        r"could not receive data from server|no connection to the server|connection not open|"
        r"write to server failed|invalid socket|\w+\([\w_]*\) failed: ",
        "tcp",
        NetworkError,
        "the server cannot be reached from here: check the network path and the port",
        "fe-connect.c",
        (
            "No route to host",
            "could not create socket: Address family not supported by protocol",
            "could not send startup packet: Broken pipe",
            "could not receive data from server: Connection reset by peer",
            "setsockopt(TCP_KEEPIDLE) failed: Invalid argument",
        ),
    ),
    # ---------------------------------------------------------------- 5. TLS
    Rule(
        r"server does not support SSL, but SSL was (required|requested)",
        "tls",
        TLSError,
        "the server does not accept TLS: enable ssl on the server, or use sslmode=prefer/disable "
        "only on a trusted network",
        "fe-connect.c",
        ("server does not support SSL, but SSL was required",),
    ),
    Rule(
        r"received unencrypted data after (SSL|GSSAPI encryption) response",
        "tls",
        TLSError,
        "the server sent plaintext where the TLS handshake belongs: something in the middle may "
        "be injecting data; use sslmode=verify-full and check the path",
        "fe-connect.c",
        ("received unencrypted data after SSL response",),
    ),
    Rule(
        r"received invalid response to (SSL|GSSAPI) negotiation|"
        r"expected authentication request from server, but received|"
        r"received invalid authentication request|received invalid protocol negotiation|"
        r"received invalid error message|unexpected message from server during startup|"
        r"received duplicate protocol negotiation|server only supports protocol version|"
        r"unexpected response from server|received invalid BackendKeyData|"
        r"message contents do not agree with length|mismatched message length|protocol error|"
        r"arrived from server while idle|insufficient data in|unexpected field count|"
        r"server sent data \(|server returned too much data|header size exceeds|"
        r"Unknown message",
        None,
        NetworkError,
        "what answers on this port does not speak PostgreSQL's protocol: check DB_PORT (an "
        "HTTP or other service?) and any proxy on the way",
        "fe-connect.c",
        (
            "received invalid response to SSL negotiation: H",
            "expected authentication request from server, but received H",
            "unexpected message from server during startup",
        ),
    ),
    Rule(
        r"server sent an error response during (SSL|GSS encryption) exchange",
        "tls",
        TLSError,
        "the server answered the TLS request with an error (an old server or a proxy that does "
        "not take SSLRequest): check the server's ssl setting and any proxy on the way",
        "fe-connect.c",
        ("server sent an error response during SSL exchange",),
    ),
    Rule(
        r"GSSAPI encryption required|doesn't support GSSAPI encryption|GSSAPI (wrap|unwrap|size "
        r"check|name import) error|GSSAPI packet|GSSAPI message|GSSAPI caller|GSSAPI buffer",
        "tls",
        TLSError,
        "gssencmode=require needs a Kerberos ticket and a server with GSSAPI encryption: "
        "run kinit, or use DB_GSSENCMODE=prefer/disable with TLS instead",
        "fe-connect.c",
        (
            "GSSAPI encryption required but no credential cache",
            "server doesn't support GSSAPI encryption, but it was required",
        ),
    ),
    Rule(
        r"direct SSL connection was established without ALPN|"
        r"SSL connection was established with unexpected ALPN protocol",
        "tls",
        TLSError,
        "the TLS endpoint did not agree to the 'postgresql' ALPN protocol, so it is not "
        "PostgreSQL 17+ itself (an old server behind a TLS proxy?): use sslnegotiation=postgres",
        "fe-secure-openssl.c",
        ("direct SSL connection was established without ALPN protocol negotiation extension",),
    ),
    Rule(
        r"server certificate for .* does not match host name|does not match host name|"
        r"could not get server's host name from server certificate|"
        r"SSL certificate's name (contains embedded null|entry is missing)|"
        r"certificate contains IP address with invalid length|SSL certificate's address entry|"
        r"could not convert certificate's IP address",
        "tls",
        TLSError,
        "the certificate names another host: connect with a host name it lists, or use "
        "sslmode=verify-ca to skip the host-name check",
        "fe-secure-common.c",
        (
            'server certificate for "a" (and 1 other name) does not match host name "h"',
            "could not get server's host name from server certificate",
        ),
    ),
    Rule(
        r"root certificate file .* does not exist",
        "tls",
        TLSError,
        "set DB_SSLROOTCERT to the CA certificate that signed the server's certificate "
        "(or sslrootcert=system for a public CA)",
        "fe-secure-openssl.c",
        ('root certificate file "/home/u/.postgresql/root.crt" does not exist',),
    ),
    Rule(
        r"alert unknown ca",
        "tls",
        TLSError,
        "the server does not trust the CA that issued your client certificate (DB_SSLCERT): use "
        "a certificate signed by a CA in the server's ssl_ca_file, or add your CA there",
        "fe-secure-openssl.c",
        ("SSL error: tlsv1 alert unknown ca",),
    ),
    Rule(
        r"alert (bad certificate|certificate (expired|revoked|unknown|unsupported)|"
        r"unsupported certificate|decrypt error|access denied)",
        "tls",
        TLSError,
        "the server rejected your client certificate during the handshake (expired, revoked or "
        "not usable for client authentication): check DB_SSLCERT (pgconnect check shows its "
        "dates)",
        "fe-secure-openssl.c",
        (
            "SSL error: sslv3 alert bad certificate",
            "SSL error: sslv3 alert certificate expired",
            "SSL error: sslv3 alert certificate revoked",
        ),
    ),
    Rule(
        r"alert certificate required",
        "tls",
        TLSError,
        "the TLS endpoint demands a client certificate: set DB_SSLCERT and DB_SSLKEY",
        "fe-secure-openssl.c",
        ("SSL error: tlsv13 alert certificate required",),
    ),
    Rule(
        r"certificate verify failed|self[- ]signed certificate|unable to get local issuer|"
        r"certificate has expired|certificate is not yet valid|certificate revoked|"
        r"certificate could not be obtained",
        "tls",
        TLSError,
        "the server's certificate is not signed by the CA in DB_SSLROOTCERT: point DB_SSLROOTCERT "
        "at the right CA certificate (libpq checks the chain whenever a root certificate file "
        "exists, even for sslmode=require)",
        "fe-secure-openssl.c",
        (
            "SSL error: certificate verify failed",
            "SSL error: certificate verify failed: self-signed certificate in certificate chain",
            "certificate could not be obtained: unable to get local issuer certificate",
        ),
    ),
    Rule(
        r"server closed the connection unexpectedly|terminated abnormally|"
        r"unexpected EOF|unexpected eof while reading|SSL SYSCALL error: EOF detected|"
        r"SSL connection has been closed unexpectedly|lost synchronization|"
        r"terminating connection due to administrator command",
        None,
        NetworkError,
        "the connection was dropped: is this port a PostgreSQL server (or a pooler in front of "
        "one)? check DB_PORT and any proxy or load balancer on the way",
        "fe-secure-openssl.c",
        (
            "server closed the connection unexpectedly",
            "SSL SYSCALL error: EOF detected",
            "SSL error: unexpected eof while reading",
            "SSL connection has been closed unexpectedly",
        ),
        dropped=True,
    ),
    Rule(
        r"This may indicate that the server does not support any SSL protocol version|"
        r"unsupported protocol|no protocols available|wrong version number|"
        r"alert protocol version",
        "tls",
        TLSError,
        "client and server share no TLS version: check the server's ssl_min_protocol_version "
        "and DB_SSL_MIN_PROTOCOL_VERSION / DB_SSL_MAX_PROTOCOL_VERSION",
        "fe-secure-openssl.c",
        (
            "SSL error: unsupported protocol\nThis may indicate that the server does not support "
            "any SSL protocol version between TLSv1.3 and TLSv1.3.",
            "SSL error: tlsv1 alert protocol version",
        ),
    ),
    Rule(
        r"SSL error|SSL SYSCALL|tlsv1 alert|sslv3 alert|ssl handshake|"
        r"could not establish SSL connection|could not create SSL context|"
        r"could not set SSL (Server Name Indication|ALPN)|unrecognized SSL error|"
        r"could not (determine server certificate signature algorithm|find digest|"
        r"generate peer certificate hash)|SSL_(read|write) failed|OpenSSL reports",
        "tls",
        TLSError,
        "the TLS handshake failed: check the server's ssl settings and "
        "DB_SSL_MIN_PROTOCOL_VERSION / DB_SSL_MAX_PROTOCOL_VERSION",
        "fe-secure-openssl.c",
        (
            "SSL error: handshake failure",
            "could not establish SSL connection: internal error",
            "could not create SSL context: library has no ciphers",
        ),
    ),
    # ---------------------------------------------------------------- 7. the server's refusals
    Rule(
        r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) .* no encryption",
        "auth",
        RejectedError,
        "the server only accepts TLS connections: use sslmode=require or stronger "
        "(verify-full with DB_SSLROOTCERT is best)",
        "auth.c",
        ('FATAL:  no pg_hba.conf entry for host "h", user "u", database "d", no encryption',),
    ),
    Rule(
        r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) .* (SSL|GSS) encryption",
        "auth",
        RejectedError,
        "the server refuses encrypted connections from here (pg_hba.conf hostnossl): ask the "
        "administrator, or use sslmode=disable only on a trusted network",
        "auth.c",
        (
            'FATAL:  pg_hba.conf rejects connection for host "h", user "u", database "d", SSL '
            "encryption",
        ),
    ),
    Rule(
        r"no pg_hba\.conf entry|pg_hba\.conf rejects",
        "auth",
        RejectedError,
        "pg_hba.conf has no rule for this host, user and database: ask the administrator",
        "auth.c",
        ('FATAL:  no pg_hba.conf entry for host "h", user "u", database "d"',),
    ),
    Rule(
        r"connection requires a valid client certificate",
        "auth",
        RejectedError,
        "the server demands a client certificate (pg_hba.conf cert or clientcert=verify-ca/full) "
        "and got none it could verify: set DB_SSLCERT and DB_SSLKEY to a certificate issued by "
        "a CA the server trusts",
        "auth.c",
        ("FATAL:  connection requires a valid client certificate",),
    ),
    Rule(
        r"certificate authentication failed for user|"
        r"certificate validation \(clientcert=verify-full\) failed",
        "auth",
        RejectedError,
        "the server accepted your client certificate but its CN is not the user name: use a "
        "certificate whose CN is DB_USERNAME, set DB_USERNAME to the CN, or map them in "
        "pg_ident.conf",
        "auth.c",
        (
            'FATAL:  certificate authentication failed for user "u"',
            'FATAL:  certificate validation (clientcert=verify-full) failed for user "u": CN '
            "mismatch",
        ),
    ),
    Rule(
        r"client certificates can only be checked if a root certificate store is available",
        "auth",
        RejectedError,
        "pg_hba.conf asks for client certificates but the server has no ssl_ca_file: ask the "
        "administrator to set it",
        "auth.c",
        (
            "FATAL:  client certificates can only be checked if a root certificate store is "
            "available",
        ),
    ),
    Rule(
        r"fe_sendauth: no password supplied",
        "auth",
        RejectedError,
        "the server asks for a password and none is set: pgconnect secret put DB_PASSWORD "
        "(or set DB_PASSWORD in the environment)",
        "fe-auth.c",
        ("fe_sendauth: no password supplied",),
    ),
    Rule(
        r"invalid SCRAM response \(nonce mismatch\)|malformed SCRAM message|"
        r"incorrect server signature|invalid server signature|could not verify server signature",
        "auth",
        RejectedError,
        "the server could not prove it knows your password (SCRAM): this is not the server you "
        "think, or a pooler in between holds another password; check DB_HOST and the pooler's "
        "auth settings",
        "fe-auth-scram.c",
        (
            "invalid SCRAM response (nonce mismatch)",
            "malformed SCRAM message (invalid server signature)",
            "incorrect server signature",
        ),
    ),
    Rule(
        r"could not (calculate client proof|encode (cbind data|nonce|client proof|salt|stored key|"
        r"server key)|generate (nonce|random salt)|encrypt password)|fe_sendauth: error "
        r"(in SASL authentication|sending password authentication)|no client response found "
        r"after SASL|allocating SASL buffer|async authentication|allowed_sasl_mechs|"
        r"invalid SCRAM exchange state",
        "auth",
        RejectedError,
        "libpq could not complete its side of the login (SCRAM/password exchange): this libpq's "
        "crypto library failed; retry, and if it persists reinstall libpq/OpenSSL",
        "fe-auth-scram.c",
        ("could not calculate client proof: out of memory", "could not generate nonce"),
    ),
    Rule(
        r"OAuth|OAUTHBEARER|bearer token|discovery (document|metadata)|server's error "
        r"(message|response)|error response without a status|field \"[^\"]*\" (is duplicated|must "
        r"be a string)|top-level element must be an object",
        "auth",
        RejectedError,
        "the OAuth login failed: check DB_OAUTH_ISSUER and DB_OAUTH_CLIENT_ID against the "
        "server's identity provider (the server's OAuth validator says why in its log)",
        "fe-auth-oauth.c",
        (
            'OAuth discovery URI "http://x" must use HTTPS',
            "server rejected OAuth bearer token: invalid",
            "user-defined OAuth flow failed",
        ),
    ),
    Rule(
        r"none of the server's SASL authentication mechanisms are supported|"
        r"Unknown authentication message|"
        r"server requested an unknown authentication type|authentication method \d+ not "
        r"supported|Kerberos [45] authentication not supported|Crypt authentication not "
        r"supported|SSPI authentication not supported|GSSAPI authentication not supported|"
        r"GSSAPI continuation error|could not initiate GSSAPI security context|"
        r"duplicate (GSS|SASL) authentication request|fe_sendauth: invalid authentication "
        r"request|AuthenticationSASLFinal received",
        "auth",
        RejectedError,
        "the server asks for an authentication method this libpq cannot do (GSSAPI/SSPI/"
        "Kerberos or an unknown one): ask the administrator for a scram-sha-256 rule in "
        "pg_hba.conf",
        "fe-auth.c",
        (
            "none of the server's SASL authentication mechanisms are supported",
            "authentication method 9 not supported",
            "Crypt authentication not supported",
        ),
    ),
    Rule(
        r"(Peer|Ident) authentication failed",
        "auth",
        RejectedError,
        "peer/ident login: the server compares your operating-system user with DB_USERNAME; "
        "connect as that user, map them in pg_ident.conf, or use a password over TCP",
        "auth.c",
        ('FATAL:  Peer authentication failed for user "u"',),
    ),
    Rule(
        r"(GSSAPI|SSPI|LDAP|RADIUS|PAM|BSD) authentication failed",
        "auth",
        RejectedError,
        "the server's external authentication (GSSAPI, LDAP, RADIUS, PAM) refused the login: "
        "check the credentials that system expects, or ask the administrator",
        "auth.c",
        ('FATAL:  LDAP authentication failed for user "u"',),
    ),
    Rule(
        r"password authentication failed|authentication failed|password is too long|SCRAM|"
        r"server requested .* authentication|server requested a (cleartext|hashed) password|"
        r"password retrieved from file",
        "auth",
        RejectedError,
        RULES_PASSWORD_HINT,
        "auth.c",
        ('FATAL:  password authentication failed for user "u"',),
    ),
    Rule(
        r"database \".*\" does not exist",
        "auth",
        RejectedError,
        "check DB_NAME: that database does not exist on the server",
        "postinit.c",
        ('FATAL:  database "d" does not exist',),
    ),
    Rule(
        r"role \".*\" does not exist",
        "auth",
        RejectedError,
        "check DB_USERNAME: that role does not exist on the server",
        "postinit.c",
        ('FATAL:  role "r" does not exist',),
    ),
    Rule(
        r"role \".*\" is not permitted to log in",
        "auth",
        RejectedError,
        "the role exists but may not log in: ask the administrator (ALTER ROLE … LOGIN)",
        "postinit.c",
        ('FATAL:  role "r" is not permitted to log in',),
    ),
    Rule(
        r"permission denied for database|does not allow connections|"
        r"is not currently accepting connections",
        "auth",
        RejectedError,
        "the role may not connect to this database (no CONNECT privilege, or the database is "
        "closed to connections): ask the administrator, or check DB_NAME",
        "postinit.c",
        (
            'FATAL:  permission denied for database "d"',
            'FATAL:  database "d" is not currently accepting connections',
        ),
    ),
    Rule(
        r"too many (connections|clients)|remaining connection slots|no more connections allowed",
        "auth",
        RejectedError,
        "the server is out of connection slots: use a pooler (PgBouncer, the provider's pooled "
        "endpoint) or close idle connections",
        "postinit.c",
        (
            "FATAL:  sorry, too many clients already",
            'FATAL:  too many connections for role "r"',
            "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER "
            "attribute",
        ),
    ),
    Rule(
        r"the database system is (starting up|shutting down|in recovery mode|not yet accepting)|"
        r"not accepting connections",
        "auth",
        RejectedError,
        "the server is not accepting logins right now: try again later (check --wait S retries), "
        "or ask the administrator",
        "postmaster.c",
        (
            "FATAL:  the database system is starting up",
            "FATAL:  the database system is not yet accepting connections",
        ),
    ),
    Rule(
        r"invalid value for parameter|unrecognized configuration parameter|"
        r"invalid command-line argument for server process|permission denied to set parameter",
        "auth",
        ConfigError,
        "the server refused a setting sent at login: check DB_OPTIONS (and "
        "DB_APPLICATION_NAME, client_encoding)",
        "guc.c",
        ('FATAL:  unrecognized configuration parameter "foo"',),
    ),
    Rule(
        r"unsupported frontend protocol",
        "auth",
        NetworkError,
        "the server is too old for this libpq (protocol 3 needs PostgreSQL 7.4+), or a proxy "
        "rejects the protocol version: check max_protocol_version and the proxy",
        "postmaster.c",
        ("FATAL:  unsupported frontend protocol 3.2: server supports 3.0 to 3.0",),
    ),
)

RULES = (
    *RULES,
    Rule(
        r"out of memory",
        None,
        CommandError,
        "the machine ran out of memory while connecting: free some, or lower what the "
        "process holds",
        "fe-connect.c",
        ("out of memory",),
    ),
)

#: sslnegotiation=direct against a server older than 17: it reads the TLS ClientHello as a
#: startup packet ("invalid length of startup packet" in its log) and hangs up.
DIRECT_TO_OLD_SERVER = (
    "sslnegotiation=direct: the server hung up on a direct TLS handshake, which only "
    "PostgreSQL 17 and later accept; use sslnegotiation=postgres (the default)"
)

DROPPED_IN_TLS = (
    "the server hung up during the TLS handshake: check its ssl settings (certificate, key, "
    "ssl_min_protocol_version) and any TLS-terminating proxy on the way"
)
