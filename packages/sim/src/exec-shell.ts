// The tiny built-in shell behind exec and attach: a script parser (quotes, escapes, comments) and a
// handful of commands (echo, cat, env, hostname, sleep, exit, sh -c, an interactive prompt).

export interface ProcessIo {
  readonly tty: boolean;
  readonly hostname: string;
  out(data: string | Buffer): void;
  err(text: string): void;
  readLine(): Promise<string | null>;
  readChunk(): Promise<Buffer | null>;
  sleep(ms: number): Promise<void>;
}

class ShellExit {
  constructor(readonly code: number) {}
}

class ShellSyntaxError extends Error {}

/** Splits a script into commands (`;` or newline between them) of words, honouring '…', "…", \ and # comments. */
export function parseScript(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (quote === "'") {
      if (c === "'") quote = '';
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = '';
      else if (c === '\\' && '"\\$`'.includes(script[i + 1] ?? '')) word += script[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < script.length) {
      word += script[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === ';' || c === '\n') {
      endCommand();
    } else if (c === '#' && !inWord) {
      while (i + 1 < script.length && script[i + 1] !== '\n') i++;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ShellSyntaxError('unterminated quoted string');
  endCommand();
  return commands;
}

const shells = new Set(['sh', 'bash']);
const baseName = (cmd: string) => cmd.replace(/^\/(?:usr\/)?s?bin\//, '');

function environment(io: ProcessIo): string[] {
  return [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `HOSTNAME=${io.hostname}`,
    'HOME=/root',
    ...(io.tty ? ['TERM=xterm'] : []),
    'KUBERNETES_SERVICE_HOST=10.96.0.1',
    'KUBERNETES_SERVICE_PORT=443',
    'KUBERNETES_PORT=tcp://10.96.0.1:443',
  ];
}

/** Runs a command line of the container (null: the main process, an interactive shell); resolves the exit code. */
export async function runProcess(argv: string[] | null, io: ProcessIo): Promise<number> {
  try {
    return argv === null ? await interactiveShell(io) : await runCommand(argv, io);
  } catch (e) {
    if (e instanceof ShellExit) return e.code;
    throw e;
  }
}

async function runCommand(argv: string[], io: ProcessIo): Promise<number> {
  const [cmd = '', ...args] = argv;
  const name = baseName(cmd);
  switch (name) {
    case 'echo': {
      const newline = args[0] !== '-n';
      io.out(`${(newline ? args : args.slice(1)).join(' ')}${newline ? '\n' : ''}`);
      return 0;
    }
    case 'env':
      io.out(`${environment(io).join('\n')}\n`);
      return 0;
    case 'hostname':
      io.out(`${io.hostname}\n`);
      return 0;
    case 'pwd':
      io.out('/\n');
      return 0;
    case 'whoami':
      io.out('root\n');
      return 0;
    case 'true':
      return 0;
    case 'false':
      return 1;
    case 'sleep': {
      const s = Number(args[0]);
      if (!Number.isFinite(s) || s < 0) {
        io.err(`sleep: invalid number '${args[0] ?? ''}'\n`);
        return 1;
      }
      await io.sleep(s * 1000);
      return 0;
    }
    case 'cat': {
      if (args.length > 0) {
        io.err(`cat: ${args[0]}: No such file or directory\n`);
        return 1;
      }
      for (let chunk = await io.readChunk(); chunk !== null; chunk = await io.readChunk())
        io.out(io.tty ? chunk.toString('utf8') : chunk);
      return 0;
    }
    case 'exit': {
      if (args.length === 0) throw new ShellExit(0);
      const n = Number(args[0]);
      if (!/^\d+$/.test(args[0]!)) {
        io.err(`sh: exit: Illegal number: ${args[0]}\n`);
        throw new ShellExit(2);
      }
      throw new ShellExit(n % 256);
    }
    default:
      if (shells.has(name)) return shell(args, io);
      io.err(`sh: ${cmd}: not found\n`);
      return 127;
  }
}

async function shell(args: string[], io: ProcessIo): Promise<number> {
  try {
    if (args[0] === '-c') {
      if (args.length < 2) {
        io.err('sh: -c requires an argument\n');
        return 2;
      }
      return await runScript(args[1]!, io, 0);
    }
    return await interactiveShell(io);
  } catch (e) {
    // `exit` ends this shell, not the one that started it.
    if (e instanceof ShellExit) return e.code;
    throw e;
  }
}

async function runScript(script: string, io: ProcessIo, last: number): Promise<number> {
  let commands: string[][];
  try {
    commands = parseScript(script);
  } catch (e) {
    if (!(e instanceof ShellSyntaxError)) throw e;
    io.err(`sh: syntax error: ${e.message}\n`);
    return 2;
  }
  let code = last;
  for (const argv of commands) code = await runCommand(argv, io);
  return code;
}

async function interactiveShell(io: ProcessIo): Promise<number> {
  let last = 0;
  for (;;) {
    if (io.tty) io.out('$ ');
    const line = await io.readLine();
    if (line === null) {
      if (io.tty) io.out('exit\n');
      return last;
    }
    if (line.trim() === '') continue;
    last = await runScript(line, io, last);
  }
}
