// What every part of one gateway replica is built with: the validated config, the one clock, the
// replica's id, the logger and the metrics. Only the composition root (gateway.ts, compose/) builds it.
import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import type { Config } from '../config/types.js';
import type { Component } from '../lib/lifecycle.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { createMetrics, type GatewayMetrics } from '../lib/metrics.js';

export interface GatewayContext {
  config: Config;
  clock: () => number;
  replicaId: string;
  logger: Logger;
  metrics: GatewayMetrics;
}

export function createGatewayContext(options: {
  config: Config;
  clock?: () => number;
  replicaId?: string;
  logger?: Logger;
  logDestination?: DestinationStream;
}): GatewayContext {
  const metrics = createMetrics();
  const buffer = { onDrop: (lines: number) => metrics.logLinesDropped.inc(lines) };
  return {
    config: options.config,
    clock: options.clock ?? Date.now,
    replicaId: options.replicaId ?? `hoopgate-${randomUUID().slice(0, 8)}`,
    logger:
      options.logger ??
      createLogger(options.logDestination === undefined ? { buffer } : { destination: options.logDestination, buffer }),
    metrics,
  };
}

/** Started first, so stopped last: every line of the stop, queued or not, is written (lib/log-buffer.ts). */
export function logFlushComponent({ logger }: GatewayContext): Component<void> {
  return { name: 'log', start() {}, stop: () => logger.flush?.() };
}
