// `node dist/saml-assertion-cli.js --dir DIR [--agent NAME]`: signs a fresh assertion with the demo IdP's key
// (DIR/saml-idp-key.pem, DIR/saml-idp-cert.pem) for an agent of DIR/saml-idp.json, as base64url.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createLocalSamlIdp, encodeAssertion } from './local-saml-idp.js';

export interface DemoSamlIdpFile {
  entityId: string;
  audience: string;
  agents: Record<string, { nameId: string; attributes: Record<string, string[]> }>;
}

export async function main(argv: readonly string[]): Promise<number> {
  const dir = argv[argv.indexOf('--dir') + 1];
  const agentIndex = argv.indexOf('--agent');
  if (!argv.includes('--dir') || dir === undefined) {
    process.stderr.write('usage: saml-assertion-cli.js --dir DIR [--agent NAME]\n');
    return 2;
  }
  const spec = JSON.parse(readFileSync(join(dir, 'saml-idp.json'), 'utf8')) as DemoSamlIdpFile;
  const name = agentIndex >= 0 ? argv[agentIndex + 1] : Object.keys(spec.agents)[0];
  const agent = name === undefined ? undefined : spec.agents[name];
  if (agent === undefined) {
    process.stderr.write(`no SAML agent ${JSON.stringify(name)} in ${join(dir, 'saml-idp.json')}\n`);
    return 1;
  }
  const idp = createLocalSamlIdp(spec.entityId, {
    key: readFileSync(join(dir, 'saml-idp-key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'saml-idp-cert.pem'), 'utf8'),
  });
  process.stdout.write(
    `${encodeAssertion(idp.issue({ nameId: agent.nameId, audience: spec.audience, attributes: agent.attributes }))}\n`,
  );
  return 0;
}

// Run as a command (`hoopgate token --saml-assertion-command` starts it), not when imported.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
