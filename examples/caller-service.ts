// A small service that calls another private Cloud Run service with the right ID token.
// Run it: TARGET_URL=https://callee-….run.app node examples/caller-service.ts   (then GET http://127.0.0.1:8080/)
// Against the emulator: see test/lib/example.test.ts.
import { createServer, type Server } from 'node:http';
import { idTokenFetch } from 'idcall';

export function startCaller(targetUrl: string, port = 8080, options: Parameters<typeof idTokenFetch>[0] = {}): Promise<Server> {
  // One fetch for the whole service: tokens are cached per audience and refreshed before they expire.
  const fetchWithToken = idTokenFetch(options);
  const server = createServer(async (_req, res) => {
    try {
      const upstream = await fetchWithToken(new URL('/greeting', targetUrl));
      const body = await upstream.text();
      res.writeHead(upstream.ok ? 200 : 502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ upstreamStatus: upstream.status, upstream: upstream.ok ? JSON.parse(body) : body.slice(0, 200) }));
    } catch (err) {
      // IdcallError carries a stable code and the exact fix.
      const e = err as { code?: string; message: string; fix?: string };
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: e.code ?? 'ERROR', message: e.message, fix: e.fix }));
    }
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.env.TARGET_URL;
  if (!target) throw new Error('Set TARGET_URL to the private service to call.');
  const server = await startCaller(target, Number(process.env.PORT ?? 8080));
  console.log(`caller listening on http://127.0.0.1:${(server.address() as { port: number }).port}, calling ${target}`);
}
