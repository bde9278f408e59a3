// A fast fixed-response API-server stand-in (issue #13): the simulator serves ~1,200 small GETs/s and
// so hides the gateway's cost. This HTTPS server answers GET `fastPodPath` with a small Pod from
// memory (no auth check, no gzip: the API server compresses only large bodies) at several thousand
// requests per second; every other request (SubjectAccessReview, TokenRequest, discovery) goes to
// the simulator as is, so the gateway behaves as it does in front of the simulator.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

export const fastPodPath = '/api/v1/namespaces/staging/pods/bench-pod';

/** A small Pod as the API server returns it (≈ 1 KB). */
export const fastPodBody = Buffer.from(
  JSON.stringify({
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: 'bench-pod',
      namespace: 'staging',
      uid: '6c1f4b52-0d7e-4b8e-9d1e-3f1a2b3c4d5e',
      resourceVersion: '4242',
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { app: 'web' },
    },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'registry.example.com/web:1.4.2',
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: {},
          terminationMessagePath: '/dev/termination-log',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      nodeName: 'node-1',
      schedulerName: 'default-scheduler',
    },
    status: {
      phase: 'Running',
      podIP: '10.0.0.12',
      hostIP: '192.168.1.10',
      startTime: '2026-01-01T00:00:01Z',
      qosClass: 'BestEffort',
    },
  }),
);

export interface FastUpstream {
  url: string;
  close(): Promise<void>;
}

export async function startFastUpstream(options: {
  certFile: string;
  keyFile: string;
  simUrl: string;
  simCaFile: string;
}): Promise<FastUpstream> {
  const sim = new Pool(options.simUrl, { connections: 16, connect: { ca: readFileSync(options.simCaFile, 'utf8') } });
  const headers = {
    'content-type': 'application/json',
    'content-length': String(fastPodBody.length),
    'audit-id': 'bench',
    'cache-control': 'no-cache, private',
  };

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const forwardHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name === 'host' || name === 'connection' || name === 'content-length' || value === undefined) continue;
      forwardHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const method = (req.method ?? 'GET') as 'GET';
    const body0 = chunks.length === 0 ? null : Buffer.concat(chunks);
    const upstream = await sim.request({ path: req.url ?? '/', method, headers: forwardHeaders, body: body0 });
    const body = Buffer.from(await upstream.body.arrayBuffer());
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive' || value === undefined)
        continue;
      out[name] = value;
    }
    out['content-length'] = String(body.length);
    res.writeHead(upstream.statusCode, out);
    res.end(body);
  }

  const server = createServer(
    { cert: readFileSync(options.certFile), key: readFileSync(options.keyFile), keepAliveTimeout: 120_000 },
    (req, res) => {
      if (req.method === 'GET' && req.url === fastPodPath) {
        res.writeHead(200, headers);
        res.end(fastPodBody);
        return;
      }
      forward(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`fast upstream: the simulator did not answer: ${(error as Error).message}`);
      });
    },
  );
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sim.close();
    },
  };
}
