// The client for Google's endpoints: every answer read in full, bounded in size and time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener } from 'node:http';
import { createNodeHttp, MAX_BODY_BYTES } from '../../../src/core/net/http.ts';

const nodeHttp = createNodeHttp();
import { describeNetworkError } from '../../../src/core/net/transport.ts';

async function serve(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

test('http: the body, status and headers (case-insensitive, repeated ones joined) of one exchange, sent as idcall', async () => {
  const server = await serve((req, res) => {
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('Metadata-Flavor', 'Google');
    res.writeHead(201).end(JSON.stringify({ method: req.method, body: req.headers['content-length'], agent: req.headers['user-agent'] }));
  });
  try {
    const res = await nodeHttp(server.url, { method: 'POST', body: 'grant=x' });
    assert.equal(res.status, 201);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('metadata-flavor'), 'Google');
    assert.equal(res.headers.get('SET-COOKIE'), 'a=1, b=2');
    assert.equal(res.headers.get('x-absent'), null);
    assert.deepEqual(res.json(), { method: 'POST', body: '7', agent: 'idcall' });
  } finally {
    await server.close();
  }
});

test(`http: an answer over ${MAX_BODY_BYTES} bytes is refused, not buffered`, async () => {
  const chunk = Buffer.alloc(1 << 20, 'x');
  const server = await serve((_req, res) => {
    res.writeHead(200);
    const write = () => {
      while (res.write(chunk)) if (res.destroyed) return;
      res.once('drain', write);
    };
    res.on('error', () => {});
    write();
  });
  try {
    await assert.rejects(nodeHttp(server.url), (err: Error & { code?: string }) => err.code === 'ERR_BODY_TOO_LARGE' && /larger than/.test(err.message));
  } finally {
    await server.close();
  }
});

test('http: an aborted request fails at once with the signal\'s reason (a timeout reads as one)', async () => {
  const server = await serve(() => {}); // never answers
  try {
    const started = performance.now();
    const err = await nodeHttp(server.url, { signal: AbortSignal.timeout(150) }).catch((e: unknown) => e);
    assert.ok(performance.now() - started < 1000);
    assert.equal(describeNetworkError(err, 150), 'timed out after 150 ms');
  } finally {
    await server.close();
  }
});

test('http: schemes other than http and https are refused with the scheme named', async () => {
  await assert.rejects(nodeHttp('ftp://example.com/token'), /unsupported URL scheme ftp:/);
});
