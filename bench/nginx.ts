// The second baseline: nginx as a plain TLS pass-through (keep-alive to the same simulated upstream),
// one worker like the single-process gateway. Started as our own child on 127.0.0.1 with a config in
// a temp dir; absent nginx → undefined, and the bench skips (b).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

export interface Nginx {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

export function findNginx(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export async function startNginx(options: {
  dir: string;
  upstreamUrl: string;
  upstreamCaFile: string;
  certFile: string;
  keyFile: string;
}): Promise<Nginx | undefined> {
  const binary = findNginx();
  if (binary === undefined) return undefined;
  const version = (spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr ?? '')
    .trim()
    .replace(/^nginx version:\s*/, '');
  mkdirSync(join(options.dir, 'temp'), { recursive: true });
  const port = await freePort();
  const upstream = new URL(options.upstreamUrl);
  const conf = join(options.dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# written by hoopgate's bench: a TLS pass-through to the simulated API server
worker_processes 1;
daemon off;
pid ${join(options.dir, 'nginx.pid')};
error_log ${join(options.dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(options.dir, 'temp', 'body')};
  proxy_temp_path ${join(options.dir, 'temp', 'proxy')};
  upstream sim {
    server ${upstream.host};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${options.certFile};
    ssl_certificate_key ${options.keyFile};
    keepalive_requests 1000000;
    location / {
      proxy_pass https://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_trusted_certificate ${options.upstreamCaFile};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
    }
  }
}
`,
  );
  const child = spawn(binary, ['-p', options.dir, '-c', conf, '-e', join(options.dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, 10_000, child);
  } catch (error) {
    child.kill('SIGKILL');
    const log = (() => {
      try {
        return readFileSync(join(options.dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    })();
    throw new Error(`${(error as Error).message}: ${stderr}${log}`.trim(), { cause: error });
  }
  return {
    url: `https://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    version,
    async stop() {
      if (child.exitCode !== null) return;
      // SIGQUIT: graceful shutdown of the master we started (and its worker).
      child.kill('SIGQUIT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
