// Posts signed audit checkpoints to the Slack channel: an outside witness of each chain head, so a
// rewritten audit store cannot also rewrite what the channel saw.
import type { SlackConfig } from '../config/types.js';
import type { SignedCheckpoint } from '../store/types.js';
import type { SlackClient } from './app.js';

export function checkpointText(checkpoint: SignedCheckpoint): string {
  const { statement } = checkpoint;
  return [
    `hoopgate audit checkpoint (${statement.type}): chain \`${statement.chain}\` seq ${statement.seq}`,
    `hash \`${statement.hash}\` at ${new Date(statement.time).toISOString()}`,
    `signature \`${checkpoint.signature}\`${checkpoint.keyGenerated ? ' (generated key: configure audit.checkpoint.signingKeyFile)' : ''}`,
  ].join('\n');
}

export function createCheckpointWitness(client: SlackClient, slack: Pick<SlackConfig, 'channel'>) {
  return async (checkpoint: SignedCheckpoint): Promise<void> => {
    await client.chat.postMessage({
      channel: slack.channel,
      text: checkpointText(checkpoint),
      unfurl_links: false,
      unfurl_media: false,
    });
  };
}
