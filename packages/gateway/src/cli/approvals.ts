// `hoopgate approvals list|approve ID|deny ID --config FILE`: the approval queue from a terminal, deciding
// through the same state machine and store as the gateway, as `cli:<OS user>`. The gateway replica
// holding the request sees the decision on its next poll; Slack is updated when configured.
import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import {
  createApprovalService,
  type ApprovalNotifier,
  type ApprovalService,
  type DecideRefusal,
} from '../approvals/service.js';
import { personKeys } from '../approvals/people.js';
import type { ApprovalGrant, ApprovalRecord, ApprovalState } from '../approvals/types.js';
import type { Config } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { formatDuration, parseDuration } from '../config/values.js';
import { HoopError } from '../lib/errors.js';
import type { Store } from '../store/index.js';
import { createStore } from '../store/index.js';
import { UsageError, parseCommandArgs } from './args.js';
import type { CliCommand, CliIo } from './io.js';

export const usage = `usage: hoopgate approvals list --config FILE [--state STATE] [--json]
       hoopgate approvals approve ID --config FILE [--reason TEXT] [--grant DURATION]
       hoopgate approvals deny ID --config FILE [--reason TEXT]
       hoopgate approvals grants --config FILE [--all] [--json]
       hoopgate approvals revoke-grant ID --config FILE

The approval queue from a terminal, acting as cli:<your OS account> (uid and name from the system). Anyone who can run this with the
gateway's configuration can read its store, so no approver group is asked; nobody approves their own
agent through Slack or the API, where an identity is known.

options:
  -c, --config FILE     the gateway configuration (its audit.store is opened)
      --state STATE     list only: pending (default), approved, denied, expired, cancelled or all
      --json            list only: one JSON record per line
      --reason TEXT     recorded with the decision and shown in Slack
      --grant DURATION  approve only: also allow the same request, by the same subject, for this long (one of approval.grantOptions)
      --all             grants only: also expired and revoked grants
`;

export interface ApprovalsCommandDeps {
  openStore?: (config: Config) => Promise<Store>;
  /** Slack (or another notifier) for updating the message in place; default: Slack when configured. */
  notifier?: (config: Config) => Promise<ApprovalNotifier | undefined>;
  clock?: () => number;
  /** Who runs the command (tests); default: os.userInfo() of the process. */
  osUser?: () => { uid: number; name: string };
}

/** The process's OS account: uid and name from the password database (-1 where there are no uids). */
function osUser(): { uid: number; name: string } {
  const info = userInfo();
  return { uid: info.uid, name: info.username };
}

const listStates = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'all'] as const;

const refusalText: Record<DecideRefusal, string> = {
  'not-found': 'no such approval',
  'not-pending': 'already decided; nothing was changed',
  'already-voted': 'you already approved it; it needs another approver (approval.minApprovals)',
  'self-approval': 'you cannot approve a request made by your own agent',
  'not-approver': 'not an approver',
  'invalid-grant': 'the grant must be one of approval.grantOptions',
};

async function slackNotifier(config: Config): Promise<ApprovalNotifier | undefined> {
  if (config.slack === undefined) return undefined;
  const { createSlackClient, createSlackNotifier } = await import('../slack/app.js');
  return createSlackNotifier({
    client: createSlackClient(config.slack),
    channel: config.slack.channel,
    grantOptionsMs: config.approval.grantOptionsMs,
  });
}

function line(record: ApprovalRecord, now: number): string {
  const r = record.request;
  const target = `${r.authorizedVerb ?? r.verb} ${r.resource === '' ? r.path : `${r.subresource === '' ? r.resource : `${r.resource}/${r.subresource}`}${r.name === '' ? '' : `/${r.name}`}`}${r.namespace === '' ? '' : ` -n ${r.namespace}`}`;
  const when =
    record.state === 'pending'
      ? `expires in ${formatDuration(Math.max(0, Math.round((record.expiresAt - now) / 1000)) * 1000)}`
      : `${record.state}${record.decidedBy === undefined ? '' : ` by ${record.decidedBy}`}`;
  const reason = record.reason === undefined ? '' : `  reason: ${JSON.stringify(record.reason)}`;
  return `${record.id}  ${record.identity}  ${target} on ${r.cluster}  ${when}  votes ${record.votes.length}${reason}\n`;
}

function grantLine(g: ApprovalGrant, now: number): string {
  const resource = `${g.resource}${g.subresource === '' ? '' : `/${g.subresource}`}${g.apiGroup === '' ? '' : `.${g.apiGroup}`}`;
  const target = `${g.verb} ${resource}${g.name === '' ? '' : `/${g.name}`}${g.namespace === '' ? '' : ` -n ${g.namespace}`}`;
  const state =
    g.revokedAt !== undefined
      ? `revoked by ${g.revokedBy ?? '?'}`
      : g.expiresAt <= now
        ? 'expired'
        : `expires in ${formatDuration(Math.max(1, Math.round((g.expiresAt - now) / 1000)) * 1000)}`;
  return `${g.id}  ${g.identity}  subject ${g.subject} (${g.issuer})  ${target} on ${g.cluster}  as ${g.serviceAccount}  granted by ${g.grantedBy}  ${state}\n`;
}

/** The options of `list`, `approve ID` and `deny ID`, each where it applies; the list state and the grant. */
function checkListOrDecideArgs(
  sub: string | undefined,
  id: string | undefined,
  values: {
    state?: string | undefined;
    json?: boolean | undefined;
    reason?: string | undefined;
    grant?: string | undefined;
    all?: boolean | undefined;
  },
): { state: string; grantMs: number | undefined } {
  if (sub !== 'list' && sub !== 'approve' && sub !== 'deny') {
    const use = 'use list, approve ID, deny ID, grants or revoke-grant ID';
    throw new UsageError(
      'approvals',
      sub === undefined ? `missing subcommand: ${use}` : `unknown subcommand ${JSON.stringify(sub)}: ${use}`,
    );
  }
  if (values.all) throw new UsageError('approvals', '--all applies to grants only');
  if (sub === 'list' && id !== undefined) throw new UsageError('approvals', 'list takes no ID');
  if (sub !== 'list' && id === undefined)
    throw new UsageError('approvals', `${sub} needs the approval ID (see hoopgate approvals list)`);
  if (sub !== 'list' && (values.state !== undefined || values.json))
    throw new UsageError('approvals', '--state and --json apply to list only');
  if (sub !== 'approve' && values.grant !== undefined)
    throw new UsageError('approvals', '--grant applies to approve only');
  if (sub === 'list' && values.reason !== undefined)
    throw new UsageError('approvals', '--reason applies to approve and deny only');
  const state = values.state ?? 'pending';
  if (!(listStates as readonly string[]).includes(state))
    throw new UsageError('approvals', `--state must be one of ${listStates.join(', ')}`);
  let grantMs: number | undefined;
  if (values.grant !== undefined) {
    grantMs = parseDuration(values.grant);
    if (grantMs === undefined)
      throw new UsageError('approvals', `--grant ${JSON.stringify(values.grant)} is not a duration such as 15m`);
  }
  return { state, grantMs };
}

/** The configuration, or undefined after printing why it is invalid. */
async function readConfig(file: string, io: CliIo): Promise<Config | undefined> {
  try {
    return await loadConfig(isAbsolute(file) ? file : resolve(io.cwd, file), io.env, {
      source: file,
      checkFiles: false,
    });
  } catch (error) {
    if (error instanceof HoopError && error.code === 'ERR_CONFIG') {
      io.stderr(`${error.message}\n`);
      return undefined;
    }
    throw error;
  }
}

/** Prints the outcome of a vote: the refusal (exit 1), the count so far, or the decision. */
function reportDecision(
  io: CliIo,
  id: string | undefined,
  result: Awaited<ReturnType<ApprovalService['decide']>>,
  minApprovals: number,
  osName: string,
): number {
  if (!result.ok) {
    io.stderr(
      `hoopgate approvals: ${id}: ${refusalText[result.why]}${result.record === undefined ? '' : ` (state ${result.record.state})`}\n`,
    );
    return 1;
  }
  const record = result.record;
  if (record.state === 'pending') {
    io.stdout(
      `${record.id}: approval recorded (${new Set(record.votes.map((v) => v.user)).size} of ${minApprovals})\n`,
    );
  } else {
    const grant = record.grantMs === undefined ? '' : `, granted for ${formatDuration(record.grantMs)}`;
    io.stdout(`${record.id}: ${record.state} by ${record.decidedBy ?? `cli:${osName}`}${grant}\n`);
  }
  return 0;
}

export function createApprovalsCommand(deps: ApprovalsCommandDeps = {}): CliCommand {
  const clock = deps.clock ?? Date.now;
  const replicaId = `cli-${process.pid}`;
  const openStore = (config: Config) =>
    (deps.openStore ?? ((c: Config) => createStore(c.audit.store, { replicaId, clock })))(config);

  /** `grants` lists (active ones unless --all); `revoke-grant ID` ends one now, as the OS account running it. */
  async function grantsCommand(
    sub: 'grants' | 'revoke-grant',
    id: string | undefined,
    values: {
      config: string;
      json?: boolean;
      all?: boolean;
      state?: string | undefined;
      reason?: string | undefined;
      grant?: string | undefined;
    },
    io: CliIo,
  ): Promise<number> {
    if (sub === 'grants' && id !== undefined) throw new UsageError('approvals', 'grants takes no ID');
    if (sub === 'revoke-grant' && id === undefined)
      throw new UsageError('approvals', 'revoke-grant needs the grant ID (see hoopgate approvals grants)');
    if (values.state !== undefined || values.reason !== undefined || values.grant !== undefined)
      throw new UsageError('approvals', `--state, --reason and --grant do not apply to ${sub}`);
    if (sub === 'revoke-grant' && (values.all === true || values.json === true))
      throw new UsageError('approvals', '--all and --json apply to grants only');
    const config = await readConfig(values.config, io);
    if (config === undefined) return 1;
    const store = await openStore(config);
    try {
      const service = createApprovalService({ repo: store.approvals, config: config.approval, replicaId, clock });
      if (sub === 'grants') {
        const grants = await service.grants({ all: values.all === true });
        if (values.json === true) for (const g of grants) io.stdout(`${JSON.stringify(g)}\n`);
        else if (grants.length === 0) io.stdout(`no ${values.all === true ? '' : 'active '}grants\n`);
        else for (const g of grants) io.stdout(grantLine(g, clock()));
        return 0;
      }
      const os = (deps.osUser ?? osUser)();
      const revoked = await service.revokeGrant(id ?? '', `cli:${os.name} (uid ${os.uid})`);
      if (revoked === null) {
        io.stderr(
          `hoopgate approvals: ${id}: no active grant with this ID (unknown, expired or already revoked); nothing was changed\n`,
        );
        return 1;
      }
      io.stdout(`${revoked.id}: revoked by ${revoked.revokedBy ?? ''}\n`);
      return 0;
    } finally {
      await store.close();
    }
  }

  return async (argv, io) => {
    const args = parseCommandArgs(
      'approvals',
      argv,
      {
        config: { type: 'string', short: 'c', required: true },
        state: { type: 'string' },
        json: { type: 'boolean' },
        reason: { type: 'string' },
        grant: { type: 'string' },
        all: { type: 'boolean' },
      },
      { names: ['list|approve|deny|grants|revoke-grant', 'ID'], min: 0, max: 2 },
    );
    if (args.help) {
      io.stdout(usage);
      return 0;
    }
    const [sub, id] = args.positionals;
    if (sub === 'grants' || sub === 'revoke-grant') return grantsCommand(sub, id, args.values, io);
    const { state, grantMs } = checkListOrDecideArgs(sub, id, args.values);

    const config = await readConfig(args.values.config, io);
    if (config === undefined) return 1;
    const store = await openStore(config);
    try {
      const notifier = sub === 'list' ? undefined : await (deps.notifier ?? slackNotifier)(config);
      const service = createApprovalService({
        repo: store.approvals,
        config: config.approval,
        replicaId,
        clock,
        ...(notifier === undefined ? {} : { notifier }),
      });
      const now = clock();
      if (sub === 'list') {
        const records = await service.list(state === 'all' ? undefined : { state: state as ApprovalState });
        if (args.values.json) for (const record of records) io.stdout(`${JSON.stringify(record)}\n`);
        else if (records.length === 0) io.stdout(`no ${state === 'all' ? '' : `${state} `}approvals\n`);
        else for (const record of records) io.stdout(line(record, now));
        return 0;
      }
      // The voter is the OS account running the command, from the system (uid), never from $USER,
      // which the caller sets at will (issue #12 item 5).
      const os = (deps.osUser ?? osUser)();
      const result = await service.decide(id ?? '', {
        approve: sub === 'approve',
        actor: {
          user: `cli:uid:${os.uid}`,
          label: `cli:${os.name} (uid ${os.uid})`,
          at: now,
          via: 'cli',
          keys: personKeys({ cliUid: os.uid }, config.approval.approvers.people),
        },
        approver: true,
        ...(args.values.reason === undefined ? {} : { reason: args.values.reason }),
        ...(grantMs === undefined ? {} : { grantMs }),
      });
      return reportDecision(io, id, result, config.approval.minApprovals, os.name);
    } finally {
      await store.close();
    }
  };
}

export const run: CliCommand = createApprovalsCommand();
