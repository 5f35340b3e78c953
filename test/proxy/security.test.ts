// Issue 11's findings against the proxy, one regression test each, over real sockets on 127.0.0.1: a single request,
// frame or connection cannot crash or leak it, a web page cannot drive it, and the forward proxy is not an open relay.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect as h2connect, constants as h2, createServer as createH2Server, createSecureServer as createSecureH2Server } from 'node:http2';
import { join } from 'node:path';
import { request } from 'undici';
import { issuedSecrets } from '../../src/emulator/index.ts';
import { TokenCache } from '../../src/core/steps/token-cache.ts';
import { createCertificateAuthority } from '../../src/core/net/certificates.ts';
import { hostAllowed } from '../../src/proxy/guards.ts';
import { assertNoSecrets, closedPort, emulatorFixture, idcall } from '../helpers/cli.ts';
import { allLogs, proxyFor, sidecar, upstream } from '../helpers/proxy.ts';
import { eventually, pingThroughUpgrade, rawExchange, rawOpen, statusOf } from '../helpers/raw.ts';

const fx = emulatorFixture();
after(() => assertNoSecrets(allLogs.map((l) => JSON.stringify(l)), issuedSecrets()));
const env = (extra: Record<string, string> = {}) => ({ HOME: fx.dir.path, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });
const portOf = (url: string) => Number(new URL(url).port);
const hasBearer = (req: IncomingMessage) => /^Bearer eyJ/.test(String(req.headers.authorization ?? req.headers['x-serverless-authorization'] ?? ''));

/** One absolute-form request through a forward proxy, as HTTP_PROXY clients send it. */
function viaForward(proxyUrl: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: portOf(proxyUrl), path: url, headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

async function echoUpstream() {
  return upstream((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: n, token: hasBearer(req) })));
  });
}

test('CONNECT to port 99999, 65536, 70000 or none answers 400 and the proxy stays up (also with --strict and the default allowlist)', async () => {
  for (const strict of [false, true]) {
    const { proxy } = await proxyFor(env(), { mode: 'forward', strict, allowHosts: ['*.run.app', '*.cloudfunctions.net'] });
    try {
      for (const target of ['127.0.0.1:99999', '127.0.0.1:65536', '127.0.0.1:70000', 'hello-abc.a.run.app:99999', '127.0.0.1', '[::1]:0', ':443']) {
        const raw = await rawExchange(portOf(proxy.url), `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
        assert.equal(statusOf(raw), 400, `CONNECT ${target} (strict ${strict}): ${raw}`);
      }
      assert.equal((await request(`${proxy.url}/__idcall/health`)).statusCode, 200, 'still serving');
    } finally {
      await proxy.close();
    }
  }
});

test('h2c: a client RST_STREAM with INTERNAL_ERROR or ENHANCE_YOUR_CALM mid-request is survived, and the upstream stream is cancelled', async () => {
  const upstreamClosed: number[] = [];
  let opened = 0;
  const hanging = createH2Server();
  hanging.on('stream', (stream, headers) => {
    if (headers[':path'] === '/ok') return void (stream.respond({ ':status': 200 }), stream.end('fine'));
    opened++;
    stream.on('error', () => {});
    stream.on('close', () => upstreamClosed.push(stream.rstCode));
  });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  const target = new URL(`http://127.0.0.1:${(hanging.address() as { port: number }).port}`);
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target });
  try {
    for (const code of [h2.NGHTTP2_INTERNAL_ERROR, h2.NGHTTP2_ENHANCE_YOUR_CALM, h2.NGHTTP2_PROTOCOL_ERROR]) {
      const session = h2connect(proxy.url);
      session.on('error', () => {});
      const req = session.request({ ':method': 'POST', ':path': '/slow', 'content-type': 'application/grpc' });
      req.on('error', () => {});
      const before = upstreamClosed.length;
      const openedBefore = opened;
      req.write('partial');
      await eventually(() => opened > openedBefore, 5000, 'the request to be in flight upstream');
      req.close(code);
      await eventually(() => upstreamClosed.length > before, 5000, 'the upstream stream to be cancelled');
      session.close();
    }
    const session = h2connect(proxy.url);
    const req = session.request({ ':path': '/ok' });
    let body = '';
    req.setEncoding('utf8').on('data', (c) => (body += c));
    await new Promise((r) => req.on('end', r));
    session.close();
    assert.equal(body, 'fine', 'the proxy is still up');
  } finally {
    await proxy.close();
    hanging.close();
  }
});

test('a client that disconnects (or half-closes) before its response aborts the upstream request: inflight back to 0, logged as 499, the pool is free', async () => {
  const closedUpstream: string[] = [];
  const up = await upstream((req, res) => {
    if (req.url === '/fast') return void res.end('fast');
    req.on('close', () => closedUpstream.push(req.url!));
    res.on('close', () => closedUpstream.length); // never answered
  });
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url), upstreamTimeoutMs: 60_000 });
  try {
    // More than the upstream pool's 128 connections: leaked requests used to fill it.
    const sockets = await Promise.all(Array.from({ length: 140 }, (_, i) => rawOpen(portOf(proxy.url), `GET /hang${i} HTTP/1.1\r\nHost: 127.0.0.1:${portOf(proxy.url)}\r\n\r\n`)));
    await eventually(() => up.seen.length >= 128, 10_000, 'the upstream to see the requests');
    sockets.forEach((s, i) => (i % 2 ? s.end() : s.destroy()));
    await eventually(() => proxy.metrics.inflight === 0, 10_000, 'inflight to return to 0');
    const aborted = log.filter((e) => e.path.startsWith('/hang'));
    assert.equal(aborted.length, 140);
    assert.ok(aborted.every((e) => e.status === 499 && e.error === 'client closed'), JSON.stringify(aborted[0]));
    await eventually(() => closedUpstream.length >= 128, 10_000, 'the upstream requests to be cancelled');
    const res = await request(`${proxy.url}/fast`, { headersTimeout: 10_000 });
    assert.equal(await res.body.text(), 'fast', 'a real request is not stuck behind the aborted ones');
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('a client that closes once it has the whole response (every Content-Length byte) is logged with the upstream status, not 499; one that closes short of it is a 499', async () => {
  // An HTTP/2 upstream (undici negotiates h2 over TLS) ends its stream after the body: the client has every byte
  // before the proxy reads the end, and clients such as curl close at once. This logged a third of curl's 200s as 499.
  const ca = createCertificateAuthority({ commonName: 'test CA', now: Date.now() });
  const leaf = ca.issue(['127.0.0.1'], { now: Date.now() });
  const ends: Array<() => void> = [];
  const up = createSecureH2Server({ cert: leaf.certPem, key: leaf.keyPem, allowHTTP1: true }, (req, res) => {
    const full = req.url === '/full';
    res.writeHead(200, { 'content-length': full ? '5' : '10' });
    res.write('hello');
    ends.push(() => (full ? res.end() : res.end('world')));
  });
  up.on('sessionError', () => {});
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const target = new URL(`https://127.0.0.1:${(up.address() as { port: number }).port}`);
  const { proxy, log } = await proxyFor(env(), { mode: 'reverse', target, routing: { connectTo: [], resolve: [], ca: ca.certPem } });
  try {
    for (const [path, status] of [['/full', 200], ['/short', 499]] as const) {
      const socket = await rawOpen(portOf(proxy.url), `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${portOf(proxy.url)}\r\n\r\n`);
      let received = '';
      socket.on('data', (d) => (received += d));
      await eventually(() => received.endsWith('\r\n\r\nhello'), 10_000, `the body of ${path} so far`);
      socket.destroy();
      await eventually(() => ends.length > 0, 5000, 'the upstream to hold its stream');
      await new Promise((r) => setTimeout(r, 50));
      ends.shift()!();
      await eventually(() => log.some((e) => e.path === path), 5000, `the access-log line for ${path}`);
      const entry = log.find((e) => e.path === path)!;
      assert.equal(entry.status, status, `${path}: ${JSON.stringify(entry)}`);
      assert.equal(entry.error, status === 499 ? 'client closed' : undefined, path);
    }
    await eventually(() => proxy.metrics.inflight === 0, 5000, 'inflight to return to 0');
  } finally {
    await proxy.close();
    await new Promise<void>((r) => up.close(() => r()));
  }
});

test('SIGTERM with a request in flight: the process finishes within --shutdown-timeout and exits 0', async () => {
  const up = await upstream(() => {}); // never answers
  const port = await closedPort();
  const child = spawn(process.execPath, ['src/cli/entry.ts', 'proxy', '--target', up.url, '--listen', `127.0.0.1:${port}`, '--shutdown-timeout', '300ms'], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  try {
    await eventually(() => /health/.test(stderr), 15_000, 'the proxy to start');
    const socket = await rawOpen(port, `GET /hang HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await eventually(() => up.seen.length === 1, 5000, 'the request to reach the upstream');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, stderr);
    socket.destroy();
  } finally {
    child.kill('SIGKILL');
    await up.close();
  }
});

test('Expect: 100-continue uploads go through, in reverse and forward mode', async () => {
  const up = await echoUpstream();
  const reverse = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url) });
  const forward = await proxyFor(env(), { mode: 'forward', allowHosts: [new URL(up.url).host] });
  try {
    for (const [proxy, path] of [
      [reverse.proxy, '/upload'],
      [forward.proxy, `${up.url}/upload`],
    ] as const) {
      const body = Buffer.alloc(256 * 1024, 7);
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(`${proxy.url}${path.startsWith('/') ? path : ''}`, { method: 'PUT', path, headers: { expect: '100-continue', 'content-length': body.length } });
        req.on('continue', () => req.end(body));
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('error', reject);
      });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(JSON.parse(answer.text), { bytes: body.length, token: true });
    }
    const curl = spawnSync('curl', ['--version']);
    if (curl.status === 0) {
      const file = join(fx.dir.path, 'upload.bin');
      await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 1));
      // Asynchronously: the proxy runs in this process.
      const { promisify } = await import('node:util');
      const { execFile } = await import('node:child_process');
      const out = await promisify(execFile)('curl', ['-sS', '-T', file, `${reverse.proxy.url}/put`], { encoding: 'utf8', timeout: 20_000 });
      assert.deepEqual(JSON.parse(out.stdout), { bytes: 2 * 1024 * 1024, token: true }, out.stderr);
    }
  } finally {
    await reverse.proxy.close();
    await forward.proxy.close();
    await up.close();
  }
});

test('a proxy loop through HTTP_PROXY under another spelling of this proxy ([::ffff:127.0.0.1], localhost) is answered 508 at once', async () => {
  for (const spelling of ['[::ffff:127.0.0.1]', 'localhost']) {
    let own = 0;
    const { proxy, log } = await proxyFor(env(), { mode: 'forward', allowHosts: [], upstreamProxy: () => `http://${spelling}:${own}` });
    own = portOf(proxy.url);
    try {
      const res = await viaForward(proxy.url, 'http://svc.test/loop');
      assert.equal(res.status, 508, res.body);
      assert.ok(log.length <= 2, `${log.length} hops`);
    } finally {
      await proxy.close();
    }
  }
});

test('IPv6: --allow-host [::1]:PORT matches, and requests and WebSocket upgrades reach an IPv6 literal with the token', async () => {
  assert.equal(hostAllowed(['[::1]:8080'], '[::1]:8080'), true);
  assert.equal(hostAllowed(['[::1]'], '[::1]:9'), true);
  assert.equal(hostAllowed(['[::1]:8080'], '[::1]:8081'), false);
  let handshake: IncomingMessage | undefined;
  const seen: IncomingMessage[] = [];
  const v6: Server = createServer((req, res) => (seen.push(req), res.end('v6')));
  v6.on('upgrade', (req, socket) => {
    handshake = req;
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`echo:${d}`));
  });
  await new Promise<void>((r) => v6.listen(0, '::1', r));
  const host = `[::1]:${(v6.address() as { port: number }).port}`;
  const { proxy } = await proxyFor(env(), { mode: 'forward', allowHosts: [host] });
  try {
    assert.equal((await viaForward(proxy.url, `http://${host}/x`)).body, 'v6');
    assert.ok(hasBearer(seen[0]!), 'the allowlisted IPv6 host got a token');
    const socket = await rawOpen(portOf(proxy.url), `GET http://${host}/chat HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    await pingThroughUpgrade(socket);
    assert.ok(handshake && hasBearer(handshake));
    socket.destroy();
  } finally {
    await proxy.close();
    v6.closeAllConnections();
    v6.close();
  }
});

test('the token cache keeps at most maxEntries audiences, least recently used first out', async () => {
  const cache = new TokenCache(async (aud) => `h.${Buffer.from(JSON.stringify({ aud, exp: 4_000_000_000 })).toString('base64url')}.s`, { maxEntries: 3, now: Date.now });
  for (const aud of ['a', 'b', 'c']) await cache.get(aud);
  await cache.get('a'); // a is now the most recent
  await cache.get('d');
  assert.equal(cache.size, 3);
  assert.ok(cache.peek('a') && cache.peek('c') && cache.peek('d'));
  assert.equal(cache.peek('b'), undefined, 'the least recently used audience was dropped');
  for (let i = 0; i < 5000; i++) await cache.get(`host-${i}`);
  assert.equal(cache.size, 3);
});

test('a failed mint is not retried for a few seconds per audience (then retried, backing off)', async () => {
  let now = 1_000_000;
  let mints = 0;
  const cache = new TokenCache(async () => (mints++, Promise.reject(new Error('broken credential'))), { now: () => now, failureBackoffMs: 2000 });
  for (let i = 0; i < 50; i++) await assert.rejects(cache.get('aud'), /broken credential/);
  assert.equal(mints, 1, 'fifty requests, one mint');
  await assert.rejects(cache.get('other'));
  assert.equal(mints, 2, 'per audience');
  now += 2001;
  await assert.rejects(cache.get('aud'));
  assert.equal(mints, 3, 'tried again after the back-off');
  now += 2001;
  await assert.rejects(cache.get('aud'));
  assert.equal(mints, 3, 'the back-off doubled');
});

test('forward mode: a browser using the proxy gets no token added to a request another site\'s page made (403); the host\'s own pages, typed URLs, --allow-origin and non-browser clients do', async () => {
  const up = await echoUpstream();
  const host = new URL(up.url).host;
  const { proxy } = await proxyFor(env(), { mode: 'forward', allowHosts: [host], allowOrigins: ['http://localhost:3000'] });
  try {
    const cases: [Record<string, string>, number][] = [
      [{ origin: 'https://evil.example' }, 403],
      [{ origin: 'null' }, 403],
      [{ 'sec-fetch-site': 'cross-site' }, 403],
      [{ 'sec-fetch-site': 'same-site' }, 403],
      [{ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, 200],
      [{ 'sec-fetch-site': 'none' }, 200],
      [{ origin: 'http://localhost:3000' }, 200],
      [{}, 200],
    ];
    for (const [headers, status] of cases) {
      const before = up.seen.length;
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      const raw = await rawExchange(portOf(proxy.url), `POST ${up.url}/delete HTTP/1.1\r\nHost: ${host}\r\n${lines}content-length: 0\r\nconnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), status, `${JSON.stringify(headers)}: ${raw}`);
      if (status === 403) assert.equal(up.seen.length, before, `${JSON.stringify(headers)}: nothing reached the host`);
      else assert.match(raw, /"token":true/, `${JSON.stringify(headers)}: the token was added`);
    }
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('reverse mode refuses requests a web page could make: a foreign Host gets 421, a cross-site Origin or Sec-Fetch-Site 403, with no token sent', async () => {
  const up = await echoUpstream();
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url), allowOrigins: ['http://localhost:3000'] });
  const port = portOf(proxy.url);
  const cases: [string, Record<string, string>, number][] = [
    ['DNS rebinding', { host: `attacker.example:${port}` }, 421],
    ['another port', { host: `127.0.0.1:${port + 1}` }, 421],
    ['localhost', { host: `localhost:${port}` }, 200],
    ['[::1]', { host: `[::1]:${port}` }, 200],
    ['127.0.0.1', { host: `127.0.0.1:${port}` }, 200],
    ['a cross-site page', { origin: 'http://evil.example' }, 403],
    ['a sandboxed page', { origin: 'null' }, 403],
    ['a local page on another port', { origin: 'http://localhost:8888' }, 403],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, 403],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, 403],
    ['Sec-Fetch-Site: none (typed URL)', { 'sec-fetch-site': 'none' }, 200],
    ['the proxy\'s own origin', { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' }, 200],
    ['--allow-origin', { origin: 'http://localhost:3000', 'sec-fetch-site': 'same-site' }, 200],
    ['a non-browser client', {}, 200],
  ];
  try {
    for (const [name, headers, status] of cases) {
      const before = up.seen.length;
      const lines = Object.entries({ host: `127.0.0.1:${port}`, ...headers }).map(([k, v]) => `${k}: ${v}`);
      const raw = await rawExchange(port, `POST /x HTTP/1.1\r\n${lines.join('\r\n')}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi`);
      assert.equal(statusOf(raw), status, `${name}: ${raw}`);
      assert.equal(up.seen.length - before, status === 200 ? 1 : 0, `${name}: the upstream ${status === 200 ? 'got' : 'never saw'} the request`);
    }
    const ws = await rawExchange(port, `GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    assert.equal(statusOf(ws), 403, 'a cross-site WebSocket is refused too');
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('the forward proxy never relays to the metadata server or link-local addresses, by request or CONNECT', async () => {
  const metadataHost = new URL(fx.emu.urls.metadata).host;
  const { proxy } = await proxyFor(env(), { mode: 'forward', allowHosts: ['*'], metadataHosts: [metadataHost] });
  const port = portOf(proxy.url);
  try {
    for (const url of [
      'http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://metadata/computeMetadata/v1/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      `http://${metadataHost}/computeMetadata/v1/instance/service-accounts/default/token`,
    ]) {
      const raw = await rawExchange(port, `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nMetadata-Flavor: Google\r\nconnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 403, `${url}: ${raw}`);
    }
    for (const target of ['169.254.169.254:80', 'metadata.google.internal:80', metadataHost]) {
      assert.equal(statusOf(await rawExchange(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)), 403, `CONNECT ${target}`);
    }
    assert.equal(fx.emu.requests.filter((r) => r.endpoint === 'metadata' && /token/.test(r.path ?? '')).length, 0, 'the metadata server was never asked');
  } finally {
    await proxy.close();
  }
});

test('the metadata server is refused under any spelling or name that reaches it (hex IPv4-mapped, NAT64, localhost, ::ffff:127.0.0.1, 0x7f.1), by request, CONNECT and upgrade', async () => {
  // GCE_METADATA_HOST is 127.0.0.1:PORT here, as the emulator and GKE's metadata proxies set it: the check that
  // matters is the address a connection reached, before a byte is sent on it.
  const metadataPort = portOf(fx.emu.urls.metadata);
  const { proxy } = await proxyFor(env(), { mode: 'forward', allowHosts: ['*'], metadataHosts: [`127.0.0.1:${metadataPort}`] });
  const port = portOf(proxy.url);
  const asked = () => fx.emu.requests.filter((r) => r.endpoint === 'metadata').length;
  const before = asked();
  try {
    const linkLocal = ['[::ffff:a9fe:a9fe]:80', '[64:ff9b::a9fe:a9fe]:80', '[0:0:0:0:0:ffff:169.254.169.254]:80', '[fe80::1]:80'];
    const sameServer = [`localhost:${metadataPort}`, `[::ffff:127.0.0.1]:${metadataPort}`, `[::ffff:7f00:1]:${metadataPort}`, `0x7f.1:${metadataPort}`, `127.1:${metadataPort}`, `127.0.0.1:${metadataPort}`];
    for (const host of [...linkLocal, ...sameServer]) {
      const get = await rawExchange(port, `GET http://${host}/computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nHost: ${host}\r\nMetadata-Flavor: Google\r\nconnection: close\r\n\r\n`);
      assert.equal(statusOf(get), 403, `GET via ${host}: ${get}`);
      const tunnel = await rawExchange(port, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\n\r\n`);
      assert.equal(statusOf(tunnel), 403, `CONNECT ${host}: ${tunnel}`);
      const upgrade = await rawExchange(port, `GET http://${host}/computeMetadata/v1/ HTTP/1.1\r\nHost: ${host}\r\nMetadata-Flavor: Google\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
      assert.equal(statusOf(upgrade), 403, `upgrade via ${host}: ${upgrade}`);
    }
    assert.equal(asked(), before, 'the metadata server never saw a request');
    // Another port of the same address is another server, and is relayed.
    const other = await upstream((_req, res) => res.end('other'));
    try {
      assert.equal(statusOf(await rawExchange(port, `GET http://localhost:${portOf(other.url)}/ HTTP/1.1\r\nHost: localhost:${portOf(other.url)}\r\nconnection: close\r\n\r\n`)), 200);
    } finally {
      await other.close();
    }
  } finally {
    await proxy.close();
  }
});

test('a redirect from the upstream is handed to the client as is: the proxy follows nothing, the foreign origin sees nothing', async () => {
  const foreign = await echoUpstream();
  const up = await upstream((_req, res) => res.writeHead(302, { location: `${foreign.url}/stolen` }).end());
  const { proxy } = await proxyFor(env(), { mode: 'reverse', target: new URL(up.url), headerName: 'X-Serverless-Authorization' });
  try {
    const res = await request(`${proxy.url}/go`);
    assert.equal(res.statusCode, 302);
    await res.body.dump();
    assert.equal(foreign.seen.length, 0);
    const call = await idcall(['call', `${up.url}/go`, '--header-name', 'X-Serverless-Authorization', '--json'], env({ IDCALL_CERTS_URL: fx.emu.urls.jwks }));
    assert.equal(JSON.parse(call.stdout).exitCode, 1);
    assert.equal(foreign.seen.length, 0, 'idcall call does not follow it either');
  } finally {
    await proxy.close();
    await up.close();
    await foreign.close();
  }
});

test('idcall proxy refuses plain http to a non-loopback host without --allow-insecure, in both modes', async () => {
  for (const args of [
    ['--target', 'http://hello-abc123-uc.a.run.app'],
    ['--forward', '--no-upgrade-http'],
    ['--forward', '--no-upgrade-http', '--allow-host', '*'],
  ]) {
    const result = await idcall(['proxy', ...args, '--listen', '127.0.0.1:0'], env());
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /USAGE_ERROR[\s\S]*--allow-insecure/);
  }
  const loopbackOnly = await sidecar(['--forward', '--no-upgrade-http', '--allow-host', '127.0.0.1:9', '--listen', '127.0.0.1:0'], env());
  assert.equal(await loopbackOnly.stop(), 0);
  const allowed = await sidecar(['--target', 'http://hello-abc123-uc.a.run.app', '--allow-insecure', '--listen', '127.0.0.1:0'], env());
  assert.equal(await allowed.stop(), 0);
});

test('a forward proxy off loopback needs --strict; the warning says what an exposed proxy gives away', async () => {
  const result = await idcall(['proxy', '--forward', '--listen', '0.0.0.0:0'], env());
  assert.equal(result.code, 2);
  assert.match(result.stderr, /USAGE_ERROR[\s\S]*--strict/);
});

test('idcall proxy --credentials with a world-readable key warns, as call and token do', async () => {
  const key = join(fx.dir.path, 'open-key.json');
  const { readFile } = await import('node:fs/promises');
  await writeFile(key, await readFile(fx.creds.files.serviceAccount!));
  await chmod(key, 0o644);
  const side = await sidecar(['--target', fx.emu.urls.services.hello!, '--credentials', key, '--listen', '127.0.0.1:0'], env());
  try {
    assert.match(side.printed(), /warning: .*readable by other users.*chmod 600/);
  } finally {
    await side.stop();
  }
});

test('a client that sends the HTTP/2 preface (or part of it) and goes away leaves no socket behind', async () => {
  const up = await echoUpstream();
  const { proxy } = await proxyFor(env(), { mode: 'reverse', h2c: true, target: new URL(up.url) });
  const open = () => new Promise<number>((r) => proxy.server.getConnections((_e, n) => r(n)));
  try {
    for (const text of ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'PRI * HTTP/2.0\r\n', 'GET / HTTP/1.1\r\n']) {
      const socket = await rawOpen(portOf(proxy.url), text);
      await eventually(() => true);
      socket.end();
      let n = -1;
      await eventually(() => (void open().then((c) => (n = c)), n === 0), 5000, `the proxy to close its side after ${JSON.stringify(text)}`);
    }
  } finally {
    await proxy.close();
    await up.close();
  }
});
