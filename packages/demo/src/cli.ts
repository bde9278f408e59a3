// `hoopgate demo` (and `npm start`): a complete local world — simulated API server, local OpenID
// provider, gateway with the embedded store — a ready kubeconfig, and the commands to try.
// Held requests are printed here and decided from a second terminal (`hoopgate approvals …`).
import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { destination } from 'pino';
import type { ApprovalNotifier } from 'hoopgate/approvals/service.js';
import type { ApprovalRecord } from 'hoopgate/approvals/types.js';
import { startDemoWorld } from './world.js';
import { parseCommandArgs } from 'hoopgate/cli/args.js';
import { tuneHeapForServing } from 'hoopgate/lib/heap-tuning.js';
import type { CliCommand } from 'hoopgate/cli/io.js';

const usage = `usage: hoopgate demo [--port N] [--dir D]

Runs a complete local world with no outside service: a simulated API server, a local OpenID
provider (and a SAML IdP), and the gateway with the embedded store. Writes D (default
.hoopgate-demo/: config, TLS material, kubeconfig, audit database, gateway.log) and prints the
commands to try. Ctrl-C stops it. Port default 8443 (0: any free port).
`;

export const run: CliCommand = async (argv, io) => {
  const args = parseCommandArgs('demo', argv, {
    port: { type: 'string', default: '8443' },
    dir: { type: 'string', default: '.hoopgate-demo' },
  });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  const dir = resolve(io.cwd, String(args.values.dir));
  const show = (path: string) => relative(io.cwd, path) || '.';
  const notifier: ApprovalNotifier = {
    async posted(record: ApprovalRecord) {
      io.stdout(
        `\n⏸  held for approval: ${record.identity} wants to ${record.request.verb} ${record.request.resource}${record.request.name ? `/${record.request.name}` : ''}` +
          `${record.request.namespace ? ` -n ${record.request.namespace}` : ''} (${record.heldBecause}${record.reason ? `, reason: ${record.reason}` : ''})\n` +
          `   approve: npx hoopgate approvals approve ${record.id} --config ${show(configPath)}\n` +
          `   deny:    npx hoopgate approvals deny ${record.id} --config ${show(configPath)} --reason "…"\n`,
      );
      return undefined;
    },
    async finalize(record: ApprovalRecord) {
      io.stdout(`   approval ${record.id}: ${record.state}${record.decidedBy ? ` by ${record.decidedBy}` : ''}\n`);
    },
  };
  const configPath = join(dir, 'hoopgate.yaml');
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, 'gateway.log');
  tuneHeapForServing(); // as `hoopgate serve` does
  const world = await startDemoWorld({
    dir,
    port: Number(args.values.port),
    gateway: { notifier },
    logDestination: destination({ dest: logPath, sync: false }),
  });
  const kubeconfig = show(world.kubeconfigPath);
  io.stdout(
    [
      `hoopgate demo is running: gateway ${world.gateway.url}, simulated cluster ${world.sim.url}, IdP ${world.idp.issuer}`,
      `config ${show(configPath)} · audit store ${world.config.audit.store} · logs ${show(logPath)}`,
      '',
      'Try it (kubectl talks only to the gateway; tokens come from the local IdP through `hoopgate token`):',
      `  export KUBECONFIG=${kubeconfig}`,
      '  kubectl get pods -n staging                                  # ci-deployer, as serviceaccount agents/ci-deployer',
      '  kubectl get secret db-credentials -n staging -o yaml         # Secret values come back masked',
      '  kubectl --context readonly-bot get secrets -n staging        # refused by a deny rule',
      '  kubectl --context readonly-bot delete pod web-0 -n staging   # refused: RBAC of agents/readonly-bot',
      '  kubectl --context saml-bot get pods -n staging               # a SAML agent: signed assertion exchanged at /hoop/v1/token',
      '  kubectl delete namespace prod                                # held for approval; approve it from another terminal',
      `  npx hoopgate approvals list --config ${show(configPath)}`,
      `  npx hoopgate explain --config ${show(configPath)} --identity ci-deployer 'DELETE /api/v1/namespaces/prod'`,
      `  npx hoopgate audit verify --config ${show(configPath)}`,
      `  npx hoopgate audit export --config ${show(configPath)}       # then: npx hoopgate replay <sessionId> --config …`,
      '',
      'Ctrl-C stops the demo.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    if (io.stopSignal.aborted) resolve();
    io.stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  io.stdout('stopping…\n');
  await world.close();
  return 0;
};
