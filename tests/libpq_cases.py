"""Connection strings from PostgreSQL's own libpq tests, shared by the parser and bad-input suites."""

# The invalid URIs of PostgreSQL's src/interfaces/libpq/test/regress.in (the cases its expected
# output answers with an error), as written there.
LIBPQ_INVALID_URIS = [
    "postgresql://host?uzer=",
    "postgre://",
    "postgres://[::1",
    "postgres://[]",
    "postgres://[::1]z",
    "postgresql://host?zzz",
    "postgresql://host?value1&value2",
    "postgresql://host?key=key=value",
    "postgres://host?dbname=%XXfoo",
    "postgresql://a%00b",
    "postgresql://%zz",
    "postgresql://%1",
    "postgresql://%",
]
