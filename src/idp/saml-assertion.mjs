#!/usr/bin/env node
// The demo's SAML IdP as a command: prints a freshly signed assertion (base64url) for the agent
// described in DIR/saml-idp.json. `hoopgate token --saml-assertion-command` runs it.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./saml-assertion-cli.ts');
process.exitCode = await main(process.argv.slice(2));
