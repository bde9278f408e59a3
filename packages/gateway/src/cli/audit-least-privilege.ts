// `hoopgate audit least-privilege --config FILE`: what each identity used, was refused and needed
// approval for, the minimal Roles that allow exactly its used calls, and the over-grant, as YAML
// (ready for `kubectl apply`), JSON (docs/reference.md §9) or a table.
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { exportEvents } from '../audit/events.js';
import {
  buildLeastPrivilegeReport,
  describePermission,
  type GrantedLookup,
  type IdentityReport,
  type LeastPrivilegeReport,
} from '../audit/least-privilege.js';
import { loadConfig as loadConfigFile } from '../config/load.js';
import type { ClusterConfig, Config } from '../config/types.js';
import type { ClusterGrantedLookup } from '../probes/granted-permissions.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { parseCommandArgs, UsageError } from './args.js';
import { parseTimeArg } from './time-arg.js';
import type { CliCommand, CliIo } from './io.js';

export const usage = `usage: hoopgate audit least-privilege --config FILE [options]

  For each identity: the permissions it used (allowed by its baseline account's RBAC), was refused
  and needed approval for; the minimal Role/ClusterRole and bindings that allow exactly the used
  calls; and the over-grant: what the baseline account is granted and never used, asked of the
  API server with SubjectAccessReview through the gateway's own credential.

  --identity NAME          only this identity (default: every identity of the config)
  --since T                start of the window: a duration back from now (30d) or an ISO time; default 30d
  --until T                end of the window; default now
  --format yaml|json|table yaml (default): the suggested objects, ready for 'kubectl apply -f -';
                           json: the report (used, refused, approved, suggestedRoles, overGrant); table: for people
  --cluster NAME           the cluster whose calls are read and asked (default: the first cluster)
  --service-account NS/NAME  bind the suggested roles to this account instead of the baseline (needs --identity)
  --offline                do not ask the API server: no over-grant
`;

export interface LeastPrivilegeCliDeps {
  loadConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<Config>;
  openStore(url: string): Promise<Store>;
  now(): number;
  /** The over-grant port for a cluster (the API server through the gateway's credential). */
  openCluster(cluster: ClusterConfig): Promise<ClusterGrantedLookup>;
}

const defaults: LeastPrivilegeCliDeps = {
  loadConfig: (path, env) => loadConfigFile(path, env),
  openStore: (url) =>
    createStore(url, { replicaId: `cli-${randomUUID().slice(0, 8)}`, pageCacheKb: 2048, writerThread: false }),
  now: () => Date.now(),
  // Loaded only when the API server is asked (not with --offline): the cluster client is ~20 MB of
  // heap that a report over a large store needs for its own cursor (issue #17).
  openCluster: async (cluster) =>
    (await import('../probes/granted-permissions.js')).createClusterGrantedLookup(cluster),
};

const COMMAND = 'audit least-privilege';
const formats = ['yaml', 'json', 'table'] as const;
type Format = (typeof formats)[number];

/** Names come from request paths: a comment line must never be broken out of. */
function safe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, '?'); // eslint-disable-line no-control-regex -- replacing control characters is the point
}

function overGrantNote(report: IdentityReport): string {
  const og = report.overGrant;
  if ('skipped' in og) return 'over-grant: not computed (--offline)';
  if ('error' in og) return `over-grant: unknown: ${og.error}`;
  return `over-grant: ${report.privileges.overGrant.length} permission(s), found by ${og.method}`;
}

export function formatYaml(reports: readonly IdentityReport[], command: string): string {
  const docs: string[] = [];
  for (const report of reports) {
    const p = report.privileges;
    const lines = [
      `# identity ${p.identity}: serviceaccount ${p.serviceAccount}, ${p.since} → ${p.until}`,
      `# ${report.totals.calls} call(s): ${p.used.length} permission(s) used, ${report.totals.refused} refused, ${report.totals.approved} approved`,
      ...p.approved.map(
        (a) =>
          `#   approved ${a.count}×: ${describePermission(a)} by ${a.approvers.length === 0 ? '(a time-bound grant)' : a.approvers.join(', ')}`,
      ),
      ...p.refused.map((r) => `#   refused ${r.count}×: ${describePermission(r)}: ${r.reason}`),
      `# ${overGrantNote(report)}`,
      ...p.overGrant.map((o) => `#   granted, never used: ${describePermission(o, 'all namespaces / cluster scope')}`),
      `# details: ${command} --identity ${p.identity} --format table`,
    ].map(safe);
    if (p.suggestedRoles.length === 0) lines.push('# no call was allowed by RBAC in the window: nothing to grant');
    const objects = p.suggestedRoles.map((o) => toYaml(o, { lineWidth: 0 }));
    docs.push(`${lines.join('\n')}\n${objects.join('---\n')}`);
  }
  return docs.map((doc) => `---\n${doc}`).join('');
}

function table(rows: readonly string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    `    ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd(),
  );
}

const groupOf = (g: string) => (g === '' ? 'core' : g);
const resourceOf = (p: { resource: string; subresource?: string }) =>
  p.subresource === undefined || p.subresource === '' ? p.resource : `${p.resource}/${p.subresource}`;
const nsOf = (ns: string | undefined) => (ns === undefined || ns === '' ? '(cluster)' : ns);

export function formatTable(reports: readonly IdentityReport[]): string {
  const out: string[] = [];
  for (const report of reports) {
    const p = report.privileges;
    out.push(`identity ${p.identity} (serviceaccount ${p.serviceAccount}) ${p.since} → ${p.until}`);
    out.push(`  ${report.totals.calls} call(s), ${report.totals.refused} refused, ${report.totals.approved} approved`);
    out.push(`  used (${p.used.length}):`);
    if (p.used.length > 0) {
      out.push(
        ...table([
          ['VERB', 'GROUP', 'RESOURCE', 'NAMESPACE', 'NAME', 'COUNT', 'LAST USED'],
          ...p.used.map((u) => [
            u.verb,
            groupOf(u.apiGroup),
            resourceOf(u),
            nsOf(u.namespace),
            u.name ?? '*',
            String(u.count),
            u.lastUsed,
          ]),
        ]),
      );
    }
    out.push(`  refused (${p.refused.length}):`);
    if (p.refused.length > 0) {
      out.push(
        ...table([
          ['VERB', 'GROUP', 'RESOURCE', 'NAMESPACE', 'NAME', 'COUNT', 'REASON'],
          ...p.refused.map((r) => [
            r.verb,
            groupOf(r.apiGroup),
            resourceOf(r),
            nsOf(r.namespace),
            r.name ?? '*',
            String(r.count),
            r.reason,
          ]),
        ]),
      );
    }
    out.push(`  needed approval (${p.approved.length}):`);
    if (p.approved.length > 0) {
      out.push(
        ...table([
          ['VERB', 'GROUP', 'RESOURCE', 'NAMESPACE', 'NAME', 'COUNT', 'APPROVED BY'],
          ...p.approved.map((a) => [
            a.verb,
            groupOf(a.apiGroup),
            resourceOf(a),
            nsOf(a.namespace),
            a.name ?? '*',
            String(a.count),
            a.approvers.join(', ') || '(time-bound grant)',
          ]),
        ]),
      );
    }
    out.push(`  ${overGrantNote(report)}`);
    if (p.overGrant.length > 0) {
      out.push(
        ...table([
          ['VERB', 'GROUP', 'RESOURCE', 'SCOPE'],
          ...p.overGrant.map((o) => [
            o.verb,
            groupOf(o.apiGroup),
            resourceOf(o),
            o.namespace === '' ? '(all namespaces / cluster)' : o.namespace,
          ]),
        ]),
      );
    }
    const roles = p.suggestedRoles.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
    out.push(
      `  suggested: ${roles.length === 0 ? 'nothing (no call allowed by RBAC)' : roles.map((o) => `${o.kind} ${o.metadata.name}${o.metadata.namespace === undefined ? '' : ` -n ${o.metadata.namespace}`} (${o.rules?.length ?? 0} rule(s))`).join(', ')}; --format yaml prints them`,
    );
    out.push('');
  }
  return out.map(safe).join('\n');
}

export function createLeastPrivilegeCommand(deps: LeastPrivilegeCliDeps = defaults): CliCommand {
  return async (argv, io: CliIo) => {
    const args = parseCommandArgs(COMMAND, argv, {
      config: { type: 'string', short: 'c', required: true },
      identity: { type: 'string' },
      since: { type: 'string', default: '30d' },
      until: { type: 'string' },
      format: { type: 'string', short: 'o', default: 'yaml' },
      cluster: { type: 'string' },
      'service-account': { type: 'string' },
      offline: { type: 'boolean' },
    });
    if (args.help) {
      io.stdout(usage);
      return 0;
    }
    const format = args.values.format as Format;
    if (!(formats as readonly string[]).includes(format))
      throw new UsageError(COMMAND, `--format ${JSON.stringify(args.values.format)}: use yaml, json or table`);
    const now = deps.now();
    const since = parseTimeArg(COMMAND, 'since', args.values.since, now);
    const until = args.values.until === undefined ? now : parseTimeArg(COMMAND, 'until', args.values.until, now);
    if (since >= until)
      throw new UsageError(
        COMMAND,
        `--since must be before --until (${new Date(since).toISOString()} is not before ${new Date(until).toISOString()})`,
      );
    const bindTo = args.values['service-account'];
    if (bindTo !== undefined) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(bindTo))
        throw new UsageError(COMMAND, `--service-account ${JSON.stringify(bindTo)}: use namespace/name`);
      if (args.values.identity === undefined)
        throw new UsageError(
          COMMAND,
          '--service-account needs --identity: the roles of one identity are bound to one account',
        );
    }

    const file = args.values.config;
    const config = await deps.loadConfig(isAbsolute(file) ? file : resolve(io.cwd, file), io.env);
    const identities = config.identities.filter(
      (i) => args.values.identity === undefined || i.name === args.values.identity,
    );
    if (identities.length === 0) {
      throw new UsageError(
        COMMAND,
        `no identity ${JSON.stringify(args.values.identity)} in the config (identities: ${config.identities.map((i) => i.name).join(', ') || 'none'})`,
      );
    }
    const cluster =
      args.values.cluster === undefined
        ? config.clusters[0]
        : config.clusters.find((c) => c.name === args.values.cluster);
    if (cluster === undefined)
      throw new UsageError(
        COMMAND,
        `no cluster ${JSON.stringify(args.values.cluster)} in the config (clusters: ${config.clusters.map((c) => c.name).join(', ')})`,
      );

    // One streamed pass over the window's events: the report keeps tallies per permission, not calls.
    let opened: ClusterGrantedLookup | undefined;
    let reports: IdentityReport[];
    const store = await deps.openStore(config.audit.store);
    try {
      let granted: GrantedLookup | undefined;
      if (!args.values.offline) {
        opened = await deps.openCluster(cluster);
        granted = opened.lookup;
      }
      reports = await buildLeastPrivilegeReport({
        identities: identities.map((i) => ({ name: i.name, serviceAccount: i.serviceAccount })),
        events: exportEvents(store.audit, { since, until }),
        since,
        until,
        cluster: cluster.name,
        ...(bindTo === undefined ? {} : { bindTo }),
        ...(granted === undefined ? {} : { granted }),
      });
    } finally {
      await opened?.close();
      await store.close();
    }

    // Fail closed: a report that silently lacks its over-grant would prove nothing.
    const failed = reports.filter((r) => 'error' in r.overGrant);
    if (failed.length > 0) {
      for (const r of failed)
        io.stderr(
          `hoopgate ${COMMAND}: identity ${r.privileges.identity}: cannot ask the API server what serviceaccount ${r.privileges.serviceAccount} is granted: ${(r.overGrant as { error: string }).error}; fix the cluster connection or run with --offline\n`,
        );
      return 1;
    }

    switch (format) {
      case 'json': {
        const report: LeastPrivilegeReport = { identities: reports.map((r) => r.privileges) };
        io.stdout(`${JSON.stringify(report, null, 2)}\n`);
        for (const r of reports) io.stderr(`note: identity ${r.privileges.identity}: ${overGrantNote(r)}\n`);
        break;
      }
      case 'table':
        io.stdout(formatTable(reports));
        break;
      case 'yaml':
        io.stdout(formatYaml(reports, `hoopgate ${COMMAND} --config ${file}`));
        break;
    }
    return 0;
  };
}

export const run: CliCommand = createLeastPrivilegeCommand();
