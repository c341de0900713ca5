// Print as JSON what wrangler's own readers give for a file (tests/test_workers.py):
//   node dotenv-read.js dev-vars FILE   -> dotenv.parse (wrangler's .dev.vars reader)
//   node dotenv-read.js dotenv FILE     -> dotenv.config + dotenv-expand (wrangler's .env reader)
const fs = require("fs");
const dotenv = require("dotenv");
const { expand } = require("dotenv-expand");
const [format, file] = process.argv.slice(2);
let out;
if (format === "dev-vars") {
  out = dotenv.parse(fs.readFileSync(file));
} else {
  const parsed = {};
  dotenv.config({ path: file, processEnv: parsed, override: true });
  const processEnv = {};
  expand({ processEnv, parsed });
  out = parsed;
}
process.stdout.write(JSON.stringify(out));
