// Print as JSON the vars and secrets wrangler itself gives each environment of a config file
// (the oracle for `pgconnect init --from-wrangler`): node read-config.js FILE [ENV...]
const { unstable_readConfig } = require("wrangler");
const [file, ...envs] = process.argv.slice(2);
const out = {};
for (const env of [undefined, ...envs]) {
  const config = unstable_readConfig({ config: file, env }, { hideWarnings: true });
  out[env ?? ""] = { vars: config.vars, secrets: config.secrets?.required ?? [] };
}
process.stdout.write(JSON.stringify(out));
