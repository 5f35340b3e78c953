// A corporate HTTP proxy for tests: it forwards absolute-form requests, mapping made-up host names to local
// servers, and records what it saw. A request for such a host can only succeed by going through it.
import { createServer, request } from 'node:http';

export interface ForwardProxy {
  url: string;
  seen: string[];
  close(): Promise<void>;
}

export async function forwardProxy(upstreams: () => Record<string, string>): Promise<ForwardProxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const asked = new URL(req.url!);
    const upstream = upstreams()[asked.hostname];
    if (!upstream) return void res.writeHead(502).end('unknown host');
    const forwarded = request(new URL(asked.pathname + asked.search, upstream), { method: req.method, headers: { ...req.headers, host: asked.host } }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    forwarded.on('error', () => res.writeHead(502).end());
    req.pipe(forwarded);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
