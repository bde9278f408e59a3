// Slack as lifecycle components: the least-privilege probes (src/probes/) built here and handed to the
// Slack adapter, the integration (Bolt loads only when `slack` is configured, ~36 MB resident), the
// weekly digest, and the listener, started once the approval service is bound.
import type { ApprovalService } from '../approvals/service.js';
import type { SignedCheckpoint } from '../store/types.js';
import { createAuditReader } from '../audit/reader.js';
import type { Component } from '../lib/lifecycle.js';
import { createClusterGrantedLookup, type ClusterGrantedLookup } from '../probes/granted-permissions.js';
import type { GatewayPrivileges, PrivilegesDigest } from '../slack/digest.js';
import type { Store } from '../store/index.js';
import type { GatewayContext } from './context.js';

async function loadSlackModules() {
  const [app, digest, witness] = await Promise.all([
    import('../slack/app.js'),
    import('../slack/digest.js'),
    import('../slack/witness.js'),
  ]);
  return {
    createSlackIntegration: app.createSlackIntegration,
    createGatewayPrivileges: digest.createGatewayPrivileges,
    createCheckpointWitness: witness.createCheckpointWitness,
  };
}

export interface SlackParts {
  integration: ReturnType<Awaited<ReturnType<typeof loadSlackModules>>['createSlackIntegration']>;
  privileges: GatewayPrivileges;
  /** Posts each signed checkpoint to the channel, when asked to (audit.checkpoint.postToSlack). */
  witness(wanted: boolean): ((checkpoint: SignedCheckpoint) => Promise<void>) | undefined;
}

/**
 * Least-privilege summaries (issue #8) answer `/hoop privileges` and the weekly digest, for the default
 * cluster: their over-grant probes ask that cluster over their own connection (only with Slack).
 */
export function probesComponent({
  config,
  clock,
  logger,
}: GatewayContext): Component<ClusterGrantedLookup | undefined> {
  const cluster = config.clusters[0];
  return {
    name: 'least-privilege probes',
    start: () =>
      config.slack === undefined || cluster === undefined ? undefined : createClusterGrantedLookup(cluster, { clock }),
    stop: (probes) =>
      probes
        ?.close()
        .catch((error: unknown) => logger.warn({ err: String(error) }, 'least-privilege digest: close failed')),
  };
}

/** The Slack integration, built (not yet listening): the approval service needs its notifier first. */
export function slackComponent(
  { config, clock, logger }: GatewayContext,
  deps: { store: Store; probes: ClusterGrantedLookup | undefined },
): Component<SlackParts | undefined> {
  return {
    name: 'slack',
    async start() {
      const slack = config.slack;
      const cluster = config.clusters[0];
      if (slack === undefined || cluster === undefined) return undefined;
      const modules = await loadSlackModules();
      const privileges = modules.createGatewayPrivileges({
        identities: config.identities,
        cluster: cluster.name,
        ...(deps.probes === undefined ? {} : { granted: deps.probes.lookup }),
        store: deps.store.audit,
        clock,
        logger,
        claim: (key, expiresAt) => deps.store.consumeOnce(key, expiresAt),
      });
      const integration = modules.createSlackIntegration({
        slack,
        approval: config.approval,
        audit: { ...createAuditReader(deps.store), privileges: privileges.source.view },
        logger,
        clock,
        consumeOnce: (key, expiresAt) => deps.store.consumeOnce(key, expiresAt),
      });
      return {
        integration,
        privileges,
        witness: (wanted) => (wanted ? modules.createCheckpointWitness(integration.app.client, slack) : undefined),
      };
    },
  };
}

/** The weekly least-privilege digest to the approvals channel. */
export function digestComponent(
  { config, logger }: GatewayContext,
  slack: SlackParts | undefined,
): Component<PrivilegesDigest | undefined> {
  return {
    name: 'least-privilege digest',
    start: () =>
      slack === undefined || config.slack === undefined
        ? undefined
        : slack.privileges.startDigest(slack.integration.app.client, config.slack.channel),
    stop: () =>
      slack?.privileges
        .close()
        .catch((error: unknown) => logger.warn({ err: String(error) }, 'least-privilege digest: close failed')),
  };
}

/** Binds the approval service to the listeners, then connects Socket Mode when configured. */
export function slackListenerComponent(slack: SlackParts | undefined, approvals: ApprovalService): Component<void> {
  return {
    name: 'slack listener',
    async start() {
      slack?.integration.bindService(approvals);
      await slack?.integration.start();
    },
    stop: () => slack?.integration.close(),
  };
}
