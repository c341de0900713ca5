"""The floor for any Python client: import psycopg, connect (libpq's PG* variables), print a row."""

import psycopg

with psycopg.connect("") as conn:
    print(conn.execute("select 1").fetchone())
