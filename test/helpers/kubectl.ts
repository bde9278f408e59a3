// Runs real kubectl (1.27–1.33 from the Cloud SDK, or /usr/bin/kubectl) against a test server, with a
// throw-away HOME so every run starts with an empty discovery cache.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KubectlVersion = '1.27' | '1.28' | '1.29' | '1.30' | '1.31' | '1.32' | '1.33';

export interface KubectlOptions {
  kubeconfig: string;
  version?: KubectlVersion;
  stdin?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectlBinary(version?: KubectlVersion): string {
  if (version) {
    const path = `/usr/lib/google-cloud-sdk/bin/kubectl.${version}`;
    if (!existsSync(path)) throw new Error(`kubectl ${version} is not installed at ${path}`);
    return path;
  }
  return '/usr/bin/kubectl';
}

export function kubectlAvailable(version?: KubectlVersion): boolean {
  return existsSync(version ? `/usr/lib/google-cloud-sdk/bin/kubectl.${version}` : '/usr/bin/kubectl');
}

/** Spawns kubectl with its own temporary HOME (removed when it exits); for watch / follow tests. */
export function spawnKubectl(args: string[], opts: KubectlOptions): ChildProcess {
  const home = mkdtempSync(join(tmpdir(), 'kubectl-home-'));
  const child = spawn(kubectlBinary(opts.version), args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, KUBECONFIG: opts.kubeconfig, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  else child.stdin?.end();
  child.on('close', () => rmSync(home, { recursive: true, force: true }));
  return child;
}

export function runKubectl(args: string[], opts: KubectlOptions): Promise<KubectlResult> {
  const child = spawnKubectl(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `kubectl ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export interface KubeconfigSpec {
  server: string;
  ca: string;
  token?: string;
  /** An exec credential plugin (client.authentication.k8s.io/v1). */
  exec?: {
    command: string;
    args?: string[];
    env?: { name: string; value: string }[];
    interactiveMode?: 'Never' | 'IfAvailable' | 'Always';
  };
  namespace?: string;
}

/** Writes a kubeconfig with one cluster, user and context into dir; returns its path. */
export function writeKubeconfig(dir: string, spec: KubeconfigSpec, fileName = 'kubeconfig'): string {
  const user: Record<string, unknown> = {};
  if (spec.token !== undefined) user['token'] = spec.token;
  if (spec.exec) {
    user['exec'] = {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: spec.exec.command,
      args: spec.exec.args ?? [],
      env: spec.exec.env ?? null,
      interactiveMode: spec.exec.interactiveMode ?? 'Never',
      provideClusterInfo: false,
    };
  }
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'test',
    clusters: [
      {
        name: 'test',
        cluster: { server: spec.server, 'certificate-authority-data': Buffer.from(spec.ca).toString('base64') },
      },
    ],
    users: [{ name: 'test', user }],
    contexts: [
      {
        name: 'test',
        context: { cluster: 'test', user: 'test', ...(spec.namespace ? { namespace: spec.namespace } : {}) },
      },
    ],
  };
  const path = join(dir, fileName);
  // JSON is valid YAML; kubectl reads it as a kubeconfig.
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}
