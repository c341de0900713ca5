// Log in with node-postgres using the connection string in $DATABASE_URL (never argv) and print
// who we are and whether the session is encrypted, as one JSON line. Used by
// tests/test_connect_cli.py to prove `pgconnect url --reveal` works for node-postgres too.
'use strict'
const { Client } = require('pg')

async function main() {
  const client = new Client({ connectionString: process.env.DATABASE_URL })
  await client.connect()
  try {
    const result = await client.query(
      'select current_user as "user", current_database() as "dbname", ' +
        'coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false) as "ssl"'
    )
    console.log(JSON.stringify(result.rows[0]))
  } finally {
    await client.end()
  }
}

main().catch((err) => {
  console.error(`login failed: ${err.message}`)
  process.exit(1)
})
