// What a CLI command gets from the composition root: arguments, environment and output streams,
// so commands are tested in-process without touching process globals.

export interface CliIo {
  stdout: (text: string) => void;
  /**
   * Resolves once stdout has taken what was written (its buffer drained): a command streaming a large
   * output awaits it between chunks, so a slow reader slows the command instead of filling memory.
   */
  drain?: () => Promise<void>;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  stopSignal: AbortSignal;
}

/** Every command module exports `run`; the exit code is returned, never `process.exit`ed. */
export type CliCommand = (argv: readonly string[], io: CliIo) => Promise<number>;
