// idcall proxy against the emulator: modes, headers, streaming, the token cache, failures, shutdown.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'undici';
import { issuedSecrets } from '../../src/emulator/index.ts';
import { assertNoSecrets, emulatorFixture } from '../helpers/cli.ts';
import { allLogs, proxyFor, upstream } from '../helpers/proxy.ts';
import { eventually, pingThroughUpgrade } from '../helpers/raw.ts';
import { parseConnectTo } from '../../src/core/net/routing.ts';

const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

const fx = emulatorFixture();
after(async () => {
  // Secret canary over everything the proxies logged in this file.
  assertNoSecrets(allLogs.map((l) => JSON.stringify(l)), issuedSecrets());
});


const env = () => ({ HOME: fx.dir.path, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_IAM_URL: fx.emu.urls.iam });
const tokenRequests = () => fx.emu.requests.filter((r) => r.endpoint === 'token').length;
const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
};

for (const headerName of ['Authorization', 'X-Serverless-Authorization'] as const) {
  test(`reverse mode with ${headerName}: the private service answers 200 to the caller`, async () => {
    const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!), headerName });
    try {
      const res = await get(`${proxy.url}/hello?q=1`);
      assert.equal(res.status, 200);
      const echo = JSON.parse(res.body);
      assert.equal(echo.path, '/hello?q=1');
      assert.equal(echo.caller, SA('caller'));
      assert.equal(echo.via, headerName);
      assert.match(String(res.headers.via), /1\.1 idcall/);
    } finally {
      await proxy.close();
    }
  });
}

test('a client Authorization header is kept; the token goes in X-Serverless-Authorization', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!) });
  try {
    const echo = JSON.parse((await get(`${proxy.url}/`, { authorization: 'Basic YXBwOmFwcA==' })).body);
    assert.equal(echo.via, 'X-Serverless-Authorization');
    assert.equal(echo.applicationAuthorization, 'present');
  } finally {
    await proxy.close();
  }
});

test('forward mode: allowed hosts get a token for their origin, others pass through without one', async () => {
  const plain = await upstream((req, res) => res.end(JSON.stringify({ authorization: req.headers.authorization ?? null })));
  const helloHost = new URL(fx.emu.urls.services.hello!).host;
  const { proxy, log } = await proxyFor(env(), { mode: 'forward', allowHosts: [helloHost] });
  const viaProxy = (url: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const p = new URL(proxy.url);
      const req = httpRequest({ host: p.hostname, port: p.port, path: url, headers: { host: new URL(url).host } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const allowed = await viaProxy(`${fx.emu.urls.services.hello}/x`);
    assert.equal(allowed.status, 200);
    assert.equal(JSON.parse(allowed.body).audience, fx.emu.urls.services.hello);
    const other = await viaProxy(`${plain.url}/y`);
    assert.equal(other.status, 200);
    assert.equal(JSON.parse(other.body).authorization, null, 'a host that is not allowed never gets a token');
    assert.deepEqual(log.map((l) => l.token), ['hit', 'none'].map((t, i) => (i === 0 ? log[0]!.token : t)));
    assert.equal(log[1]!.token, 'none');
  } finally {
    await proxy.close();
    await plain.close();
  }
});

test('forward mode --strict refuses hosts that are not allowed', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'forward', allowHosts: ['*.run.app'], strict: true });
  try {
    const p = new URL(proxy.url);
    const status = await new Promise<number>((resolve) => httpRequest({ host: p.hostname, port: p.port, path: 'http://example.com/' }, (res) => resolve(res.statusCode!)).end());
    assert.equal(status, 403);
  } finally {
    await proxy.close();
  }
});

test('hop-by-hop headers are stripped both ways (RFC 9110 §7.6.1)', async () => {
  const up = await upstream((req, res) => {
    res.setHeader('connection', 'x-upstream-hop');
    res.setHeader('x-upstream-hop', 'secret');
    res.setHeader('x-end-to-end', 'kept');
    res.end(JSON.stringify(req.headers));
  });
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url) });
  try {
    const res = await new Promise<{ headers: Record<string, unknown>; body: string }>((resolve) => {
      const p = new URL(proxy.url);
      httpRequest({ host: p.hostname, port: p.port, path: '/', headers: { connection: 'keep-alive, x-client-hop', 'x-client-hop': 'a', 'proxy-authorization': 'Basic x', 'x-end': 'b' } }, (r) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => resolve({ headers: r.headers, body }));
      }).end();
    });
    const seen = JSON.parse(res.body);
    assert.equal(seen['x-client-hop'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen['x-end'], 'b');
    assert.match(seen.authorization, /^Bearer eyJ/);
    assert.equal(res.headers['x-upstream-hop'], undefined);
    assert.equal(res.headers['x-end-to-end'], 'kept');
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('large bodies stream both ways: each side sees data before the other has finished', async () => {
  let upstreamGotFirstChunkAt = 0;
  let firstChunkUpstream!: () => void;
  const upstreamSawBytes = new Promise<void>((r) => (firstChunkUpstream = r));
  let releaseResponse!: () => void;
  const responseGate = new Promise<void>((r) => (releaseResponse = r));
  const up = await upstream((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      if (!upstreamGotFirstChunkAt) (upstreamGotFirstChunkAt = Date.now()), firstChunkUpstream();
      bytes += c.length;
    });
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(64 * 1024, 1));
      await responseGate;
      for (let i = 0; i < 256; i++) res.write(Buffer.alloc(64 * 1024, 2)); // 16 MB
      res.end(JSON.stringify({ bytes }));
    });
  });
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url) });
  try {
    const p = new URL(proxy.url);
    const chunk = Buffer.alloc(256 * 1024, 7);
    let clientFinishedAt = 0;
    const done = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: p.hostname, port: p.port, path: '/upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let received = 0;
        let first = true;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (first) {
            first = false;
            releaseResponse(); // the first response bytes arrived while the upstream is still holding the rest
          }
        });
        res.on('end', () => resolve(received));
        res.on('error', reject);
      });
      // One chunk, then the rest only once the upstream has seen bytes: a proxy that buffered the whole body would
      // never pass the first one on, and the wait below fails instead of guessing at timing.
      req.write(chunk);
      const buffered = new Promise<never>((_r, fail) => setTimeout(() => fail(new Error('the proxy held the request body back instead of streaming it')), 10_000).unref());
      Promise.race([upstreamSawBytes, buffered]).then(() => {
        for (let sent = 1; sent < 64; sent++) req.write(chunk);
        clientFinishedAt = Date.now();
        req.end();
      }, reject);
    });
    const received = await done;
    assert.ok(upstreamGotFirstChunkAt > 0 && clientFinishedAt >= upstreamGotFirstChunkAt, 'the upstream saw request bytes before the client sent the rest of its 16 MB');
    assert.ok(received > 16 * 1024 * 1024, `received ${received} bytes`);
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('single flight: 200 concurrent cold requests cost exactly one token request', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!) });
  const agent = new Agent({ connections: 50 });
  try {
    const before = tokenRequests();
    const statuses = await Promise.all(Array.from({ length: 200 }, () => request(`${proxy.url}/`, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode))));
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(tokenRequests() - before, 1);
  } finally {
    await agent.close();
    await proxy.close();
  }
});

test('tokens refresh ahead of expiry and after it, across several lifetimes, with no failed request (injected clock)', async () => {
  let offset = 0;
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!) }, {}, () => Date.now() + offset);
  try {
    const before = tokenRequests();
    const statuses: number[] = [];
    // Each hour-long token: fresh, then inside the refresh window (last 5 min), then past its expiry.
    for (const minutes of [0, 30, 56, 58, 61, 90, 117, 125, 150, 178, 185]) {
      offset = minutes * 60_000;
      for (let i = 0; i < 10; i++) {
        const res = await request(`${proxy.url}/`);
        await res.body.dump();
        statuses.push(res.statusCode);
      }
      // A background refresh runs after the answer: let it land before the clock moves on.
      await eventually(() => proxy.metrics.inflight === 0, 5000, 'requests to finish');
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed');
    assert.ok(tokenRequests() - before >= 3, `tokens minted: ${tokenRequests() - before}`);
    assert.ok(log.some((l) => l.token === 'refresh'), 'refreshes happened ahead of expiry');
  } finally {
    await proxy.close();
  }
});

test('an upstream 401 invalidates the cached token once and retries an idempotent request', async () => {
  const tokens: string[] = [];
  let alwaysReject = false;
  const up = await upstream((req, res) => {
    tokens.push(String(req.headers.authorization).slice(7));
    res.writeHead(tokens.length === 1 || alwaysReject ? 401 : 200).end();
  });
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url) });
  try {
    const before = tokenRequests();
    const res = await get(`${proxy.url}/`);
    assert.equal(res.status, 200);
    assert.equal(tokens.length, 2);
    // Two mints within one second can be byte-identical JWTs, so count the mints rather than compare tokens.
    assert.equal(tokenRequests() - before, 2, 'the cached token was dropped and a fresh one minted for the retry');
    assert.equal(claims(tokens[1]!).aud, up.url);
    assert.equal(log[0]!.token, 'retry');
    alwaysReject = true; // from now on the upstream always says 401: one retry, no loop
    const seenBefore = tokens.length;
    const again = await get(`${proxy.url}/`);
    assert.equal(again.status, 401);
    assert.equal(tokens.length - seenBefore, 2);
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('a mint failure answers 502 with the cause code and fix, not a bare 500', async () => {
  const { proxy } = await proxyFor({ ...env(), GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }, { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!) }, { 'impersonate-service-account': SA('no-access') });
  try {
    const res = await get(`${proxy.url}/`);
    assert.equal(res.status, 502);
    const body = JSON.parse(res.body);
    assert.equal(body.error.code, 'IMPERSONATION_DENIED');
    assert.match(body.error.fix, /roles\/iam\.serviceAccountTokenCreator/);
    assert.match(proxy.metrics.prometheus(), /idcall_proxy_mint_failures_total 1/);
  } finally {
    await proxy.close();
  }
});

test('health and metrics on the listen address', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(fx.emu.urls.services.hello!) });
  try {
    await get(`${proxy.url}/a`);
    const health = JSON.parse((await get(`${proxy.url}/__idcall/health`)).body);
    assert.equal(health.status, 'ok');
    const metrics = (await get(`${proxy.url}/__idcall/metrics`)).body;
    assert.match(metrics, /idcall_proxy_requests_total\{status="2xx"\} 1/);
    assert.match(metrics, /idcall_proxy_upstream_latency_seconds\{quantile="0\.99"\}/);
  } finally {
    await proxy.close();
  }
});

test('graceful shutdown finishes the request in flight and then stops listening', async () => {
  let arrived!: () => void;
  const inFlight = new Promise<void>((r) => (arrived = r));
  let finish!: () => void;
  const up = await upstream((_req, res) => {
    finish = () => res.end('slow but complete');
    arrived();
  });
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url) });
  try {
    const pending = get(`${proxy.url}/`);
    // Close while the request is certainly upstream, then let the upstream answer: no timing guesswork.
    await inFlight;
    const closed = proxy.close();
    await new Promise((r) => setImmediate(r));
    finish();
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'slow but complete');
    await closed;
    await assert.rejects(request(`${proxy.url}/`));
  } finally {
    await up.close();
  }
});

test('an unreachable upstream is a 502 naming the cause', async () => {
  const up = await upstream((_req, res) => res.end());
  const target = new URL(up.url);
  await up.close();
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target });
  try {
    const res = await get(`${proxy.url}/`);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).error.code, 'TARGET_UNREACHABLE');
  } finally {
    await proxy.close();
  }
});

test('websocket upgrades get the token on the handshake, then bytes flow both ways', async () => {
  const { createServer } = await import('node:http');
  const { connect } = await import('node:net');
  let handshakeAuth = '';
  const ws = createServer();
  ws.on('upgrade', (req, socket) => {
    handshakeAuth = String(req.headers.authorization);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`echo:${d}`));
  });
  await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
  const target = new URL(`http://127.0.0.1:${(ws.address() as { port: number }).port}`);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target });
  try {
    const p = new URL(proxy.url);
    const socket = connect(Number(p.port), p.hostname);
    socket.write(`GET /chat HTTP/1.1\r\nHost: ${p.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    const received = await pingThroughUpgrade(socket);
    assert.match(received, /^HTTP\/1\.1 101/);
    assert.match(handshakeAuth, /^Bearer eyJ/);
    assert.equal(claims(handshakeAuth.slice(7)).aud, target.origin);
    socket.destroy();
  } finally {
    await proxy.close();
    ws.closeAllConnections();
    ws.close();
  }
});

test('reverse mode to a production host name through --connect-to and --cacert: Host, SNI and audience stay the real name', async () => {
  const target = new URL(fx.emu.serviceRunUrls.hello![0]!);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target, routing: { connectTo: fx.emu.connectTo.map(parseConnectTo), resolve: [], ca: fx.emu.caPem } });
  try {
    const res = await get(`${proxy.url}/over-tls`);
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body);
    assert.equal(echo.audience, target.origin);
    assert.equal(echo.path, '/over-tls');
  } finally {
    await proxy.close();
  }
});
