// The parent side of bench/servers.ts: forks a child with `--import tsx`, waits for its `ready`,
// calls its ops over IPC, stops it (and kills it by pid if it hangs), and reads its RSS and CPU
// time from /proc — the figures are of that process, not of the load generator.
import { fork, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const serversPath = fileURLToPath(new URL('./servers.ts', import.meta.url));
/** The compiled gateway's own child: forked without `--import tsx`, so its RSS is the gateway's. */
const gatewayChildPath = fileURLToPath(new URL('./gateway-child.mjs', import.meta.url));

export interface Child<Info> {
  pid: number;
  info: Info;
  call<T = unknown>(op: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to close cleanly; kills it (SIGKILL, its pid only) after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export async function startChild<Info>(
  role: string,
  input: unknown,
  options: { logFile: string; execArgv?: string[]; readyTimeoutMs?: number; compiledGateway?: boolean },
): Promise<Child<Info>> {
  const out = openSync(options.logFile, 'a');
  const bare = role === 'gateway' && options.compiledGateway === true;
  const child: ChildProcess = fork(bare ? gatewayChildPath : serversPath, [role, JSON.stringify(input)], {
    execArgv: [...(bare ? [] : ['--import', 'tsx']), ...(options.execArgv ?? [])],
    stdio: ['ignore', out, out, 'ipc'],
  });
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`bench: could not start the ${role} child`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let readyResolve: (info: Info) => void = () => undefined;
  let readyReject: (error: Error) => void = () => undefined;
  const ready = new Promise<Info>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  child.on('message', (raw) => {
    const message = raw as { type: string; id?: number; ok?: boolean; result?: unknown; error?: string; info?: Info };
    if (message.type === 'ready') readyResolve(message.info as Info);
    if (message.type === 'reply' && message.id !== undefined) {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(`${role} child: ${message.error}`));
    }
  });
  void exited.then((code) => {
    const error = new Error(`the ${role} child exited (code ${code}); see ${options.logFile}`);
    readyReject(error);
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const timer = setTimeout(
    () => readyReject(new Error(`the ${role} child was not ready within ${readyTimeoutMs} ms; see ${options.logFile}`)),
    readyTimeoutMs,
  );
  let info: Info;
  try {
    info = await ready;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }

  return {
    pid,
    info,
    exited,
    call<T>(op: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timeout = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${role} child: ${op} took over ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (value) => {
            clearTimeout(timeout);
            resolve(value as T);
          },
          reject: (error) => {
            clearTimeout(timeout);
            reject(error);
          },
        });
        child.send({ type: 'call', id, op, args });
      });
    },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'call', id: nextId++, op: 'stop' });
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakRssMb: Math.round(kb('VmHWM') / 1024) };
}

/** User + system CPU seconds a process has used (/proc/PID/stat, clock ticks of 1/100 s on Linux). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has been busy (all cores, /proc/stat), to tell what other processes took. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / 100;
}
