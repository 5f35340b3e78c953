// gRPC through `idcall proxy`: HTTP/2 cleartext with prior knowledge on the proxy's port, HTTP/2 upstream (h2c or
// TLS with ALPN), the token on every stream, trailers carried back, failures in grpc-status.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createSecureServer, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { createConnection } from 'node:net';
import { generateSigningKey } from '../../src/emulator/keys.ts';
import { issuedSecrets } from '../../src/emulator/index.ts';
import { assertNoSecrets, closedPort, emulatorFixture } from '../helpers/cli.ts';
import { allLogs, proxyFor, sidecar } from '../helpers/proxy.ts';

const fx = emulatorFixture();
after(() => assertNoSecrets(allLogs.map((l) => JSON.stringify(l)), issuedSecrets()));
const env = () => ({ HOME: fx.dir.path, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_IAM_URL: fx.emu.urls.iam });
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

/** A gRPC-shaped upstream: echoes the body and what it was sent, then trailers with grpc-status 0. */
function grpcEcho(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
    stream.end(JSON.stringify({ body: Buffer.concat(chunks).toString(), path: headers[':path'], authorization: headers.authorization ?? null, te: headers.te ?? null }));
  });
}

async function listen(server: Http2Server | ReturnType<typeof createSecureServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** One gRPC-style call over h2c with prior knowledge, as a gRPC client makes it. */
async function call(proxyUrl: string, path: string, body: string) {
  const session = connect(proxyUrl);
  session.on('error', () => {}); // the request reports its own failure
  try {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    let text = '';
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.end(body);
    await new Promise<void>((resolve, reject) => (req.on('end', resolve), req.on('error', reject)));
    return { status: Number(headers[':status']), headers, trailers, body: text };
  } finally {
    session.close();
  }
}

test('h2c: a gRPC call reaches an h2c upstream with the token, and its trailers come back', async () => {
  const upstream = createServer();
  upstream.on('stream', grpcEcho);
  const port = await listen(upstream);
  const target = new URL(`http://127.0.0.1:${port}/base`);
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', h2c: true, target, audience: 'https://grpc.example' });
  try {
    const res = await call(proxy.url, '/pkg.Greeter/SayHello', 'ping');
    assert.equal(res.status, 200);
    assert.equal(res.trailers['grpc-status'], '0');
    const echo = JSON.parse(res.body);
    assert.equal(echo.body, 'ping');
    assert.equal(echo.path, '/base/pkg.Greeter/SayHello');
    assert.equal(echo.te, 'trailers');
    assert.equal(claims(echo.authorization.replace(/^Bearer /, '')).aud, 'https://grpc.example');
    assert.deepEqual(log.map((e) => [e.method, e.path, e.status]), [['POST', '/base/pkg.Greeter/SayHello', 200]]);
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('h2c: a 4 MB request streams through and HTTP/1.1 clients share the port', async () => {
  const upstream = createServer();
  upstream.on('stream', grpcEcho);
  const port = await listen(upstream);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(`http://127.0.0.1:${port}`) });
  try {
    const big = 'x'.repeat(4 << 20);
    const res = await call(proxy.url, '/pkg.Files/Upload', big);
    assert.equal(res.trailers['grpc-status'], '0');
    assert.equal(JSON.parse(res.body).body.length, big.length);
    // Same port, HTTP/1.1: still served (the health endpoint answers locally).
    const health = await fetch(`${proxy.url}/__idcall/health`);
    assert.equal(health.status, 200);
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('h2c: an https upstream is reached over HTTP/2 with TLS (ALPN), as Cloud Run serves gRPC', async () => {
  const key = generateSigningKey('localhost');
  const upstream = createSecureServer({ key: key.privateKeyPem, cert: key.certificatePem });
  upstream.on('stream', grpcEcho);
  const port = await listen(upstream);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(`https://localhost:${port}`), connect: { ca: key.certificatePem } });
  try {
    const res = await call(proxy.url, '/pkg.Greeter/SayHello', 'over tls');
    assert.equal(res.status, 200);
    assert.equal(res.trailers['grpc-status'], '0');
    assert.equal(JSON.parse(res.body).body, 'over tls');
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('h2c: no token → grpc-status 16 (UNAUTHENTICATED) with the cause code; nothing sent upstream', async () => {
  const upstream = createServer();
  let reached = 0;
  upstream.on('stream', (s, h) => (reached++, grpcEcho(s, h)));
  const port = await listen(upstream);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(`http://127.0.0.1:${port}`) }, { 'token-url': `http://127.0.0.1:${await closedPort()}/token` });
  try {
    const res = await call(proxy.url, '/pkg.Greeter/SayHello', 'ping');
    assert.equal(res.status, 200);
    assert.equal(res.headers['grpc-status'], '16');
    assert.match(decodeURIComponent(String(res.headers['grpc-message'])), /^TOKEN_ENDPOINT_ERROR: /);
    assert.equal(reached, 0);
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('h2c: an upstream that is down → grpc-status 14 (UNAVAILABLE)', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(`http://127.0.0.1:${await closedPort()}`) });
  try {
    const res = await call(proxy.url, '/pkg.Greeter/SayHello', 'ping');
    assert.equal(res.headers['grpc-status'], '14');
    assert.match(decodeURIComponent(String(res.headers['grpc-message'])), /^TARGET_UNREACHABLE: .*connection refused/);
  } finally {
    await proxy.close();
  }
});

test('a client that connects and never sends a byte does not hold shutdown open', async () => {
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(fx.emu.urls.services.hello!) });
  const socket = createConnection(Number(new URL(proxy.url).port), '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const closed = new Promise((r) => socket.once('close', r));
  const started = performance.now();
  await proxy.close();
  await closed;
  assert.ok(performance.now() - started < 2000);
});

test('idcall proxy --h2c: the start line says so and a gRPC call goes through; without it, HTTP/2 is not spoken', async () => {
  const upstream = createServer();
  upstream.on('stream', grpcEcho);
  const port = await listen(upstream);
  const base = { HOME: fx.dir.path, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks };
  const withH2c = await sidecar(['--target', `http://127.0.0.1:${port}`, '--listen', '127.0.0.1:0', '--h2c'], base);
  try {
    assert.match(withH2c.printed(), /\(HTTP\/1\.1 and h2c\) →/);
    const res = await call(withH2c.url, '/pkg.Greeter/SayHello', 'ping');
    assert.equal(res.trailers['grpc-status'], '0');
  } finally {
    assert.equal(await withH2c.stop(), 0);
  }
  const without = await sidecar(['--target', `http://127.0.0.1:${port}`, '--listen', '127.0.0.1:0'], base);
  try {
    await assert.rejects(call(without.url, '/pkg.Greeter/SayHello', 'ping'));
  } finally {
    await without.stop();
    upstream.close();
  }
});

test('h2c: a response without trailers ends, a trailers-only gRPC error stays trailers-only, a silent upstream gives grpc-status 4', async () => {
  const upstream = createServer();
  upstream.on('stream', (s, h) => {
    if (h[':path'] === '/pkg.Svc/Missing') return s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
    if (h[':path'] === '/pkg.Svc/Slow') return; // never answers
    s.respond({ ':status': 200, 'content-type': 'text/plain' });
    s.end('plain body');
  });
  const port = await listen(upstream);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(`http://127.0.0.1:${port}`), upstreamTimeoutMs: 300 });
  try {
    const plain = await call(proxy.url, '/page', '');
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'plain body');
    const missing = await call(proxy.url, '/pkg.Svc/Missing', '');
    assert.equal(missing.headers['grpc-status'], '5');
    assert.equal(missing.headers['grpc-message'], 'not found');
    const slow = await call(proxy.url, '/pkg.Svc/Slow', '');
    assert.equal(slow.headers['grpc-status'], '4');
    assert.match(decodeURIComponent(String(slow.headers['grpc-message'])), /^TIMEOUT: .*did not answer within 300 ms/);
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('h2c to the emulator\'s private Cloud Run service: 403 without a token, 200 as the caller through idcall proxy --h2c', async () => {
  const request = async (url: string) => {
    const session = connect(url);
    session.on('error', () => {});
    try {
      const req = session.request({ ':method': 'POST', ':path': '/orders', 'content-type': 'application/json' });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.end('{}');
      await new Promise<void>((resolve, reject) => (req.on('end', resolve), req.on('error', reject)));
      return { status, body };
    } finally {
      session.close();
    }
  };
  assert.equal((await request(fx.emu.urls.services.private!)).status, 403, 'Cloud Run (and the emulator) refuse a request without a token');
  fx.emu.grant({ kind: 'service', name: 'private' }, 'roles/run.invoker', 'serviceAccount:caller@demo-project.iam.gserviceaccount.com');
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(fx.emu.urls.services.private!), audience: fx.emu.serviceRunUrls.private![0]! });
  try {
    const res = await request(proxy.url);
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).caller, 'caller@demo-project.iam.gserviceaccount.com');
  } finally {
    await proxy.close();
  }
});

test('h2c to a production host name through --connect-to and --cacert (the emulator\'s TLS front door): 200 as the caller, the name kept in SNI and :authority', async () => {
  const { parseConnectTo } = await import('../../src/core/net/routing.ts');
  const runUrl = new URL(fx.emu.serviceRunUrls.hello![0]!);
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: runUrl, routing: { connectTo: fx.emu.connectTo.map(parseConnectTo), resolve: [], ca: fx.emu.caPem } });
  try {
    // Before, HTTP/2 upstreams ignored --connect-to and --cacert: the name went to the system's DNS (502).
    const res = await call(proxy.url, '/demo.Greeter/SayHello', 'hi');
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).caller, 'caller@demo-project.iam.gserviceaccount.com');
    assert.equal(JSON.parse(res.body).audience, runUrl.origin);
    assert.equal(log.at(-1)?.status, 200);
  } finally {
    await proxy.close();
  }
});
