// idcall proxy --forward --intercept-tls: unchanged HTTPS clients through the sidecar. Allowlisted hosts are decrypted
// with the proxy's CA and get the token inside; every other host is tunnelled byte for byte; an upstream whose
// certificate does not verify is never sent anything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer } from 'node:https';
import { connect as http2Connect, createSecureServer } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { createCertificateAuthority, loadCertificateAuthority } from '../../src/core/net/certificates.ts';
import { parseConnectTo } from '../../src/core/net/routing.ts';
import { constraintsFor, leafCache, loadOrCreateCa } from '../../src/proxy/ca-store.ts';
import type { RunningProxy } from '../../src/proxy/server.ts';
import { run } from '../../src/cli/main.ts';
import { cleanEnv, emulatorFixture, idcall } from '../helpers/cli.ts';
import { proxyFor } from '../helpers/proxy.ts';
import { eventually } from '../helpers/raw.ts';

const run$ = promisify(execFile);
const hasCurl = spawnSync('curl', ['--version']).status === 0;
let proxy: RunningProxy;
let caPem: string;
let caDir: string;
// An HTTPS server of another CA: a "real" upstream the proxy's CA has nothing to do with.
const foreign = createCertificateAuthority({ commonName: 'someone else', now: Date.now() });
const foreignLeaf = foreign.issue(['bad.run.app', 'localhost', '127.0.0.1'], { now: Date.now() });
let foreignHits = 0;
// HTTP/2 and 1.1, as Google's front ends: what the proxy's HTTP/2 relay and its HTTP/1.1 path both reach.
const openSockets = new Set<import('node:net').Socket>();
const h2Server = (cert: { certPem: string; keyPem: string }, onRequest: (req: import('node:http2').Http2ServerRequest, res: import('node:http2').Http2ServerResponse) => void) => {
  const server = createSecureServer({ cert: cert.certPem, key: cert.keyPem, allowHTTP1: true }, onRequest);
  server.on('secureConnection', (socket) => {
    openSockets.add(socket);
    socket.once('close', () => openSockets.delete(socket));
  });
  return server;
};
const foreignServer = h2Server(foreignLeaf, (_req, res) => {
  foreignHits++;
  res.end('foreign');
});
// A gRPC service on a trusted certificate: headers, one message, then trailers (grpc-status), and what it received.
const trusted = createCertificateAuthority({ commonName: 'a private CA the proxy trusts', now: Date.now() });
const grpcServer = h2Server(trusted.issue(['grpc.run.app'], { now: Date.now() }), (req, res) => {
  res.writeHead(200, { 'content-type': 'application/grpc' });
  res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'ok', 'x-saw-token': req.headers.authorization?.startsWith('Bearer ey') ? 'yes' : 'no', 'x-saw-te': String(req.headers.te) });
  res.end(Buffer.from([0, 0, 0, 0, 0]));
});

const fx = emulatorFixture(undefined, async ({ emu, creds, dir }) => {
  await new Promise<void>((r) => foreignServer.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => grpcServer.listen(0, '127.0.0.1', r));
  const grpcPort = (grpcServer.address() as { port: number }).port;
  caDir = join(dir.path, 'proxy-ca');
  const { ca } = await loadOrCreateCa({ caDir, allowHosts: ['*.run.app'], now: Date.now() });
  caPem = ca.certPem;
  const foreignPort = (foreignServer.address() as { port: number }).port;
  const env = { HOME: dir.path, GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none' };
  proxy = (
    await proxyFor(env, {
      mode: 'forward',
      allowHosts: ['*.run.app'],
      interceptTls: leafCache(ca, Date.now),
      // Production names reach the emulator's TLS front door; bad.run.app reaches a server whose CA nobody trusts.
      routing: { connectTo: [...emu.connectTo.map(parseConnectTo), parseConnectTo(`bad.run.app:443:127.0.0.1:${foreignPort}`), parseConnectTo(`grpc.run.app:443:127.0.0.1:${grpcPort}`)], resolve: [], ca: `${emu.caPem}\n${trusted.certPem}` },
    })
  ).proxy;
});
after(async () => {
  await proxy?.close();
  for (const socket of openSockets) socket.destroy();
  foreignServer.close();
  grpcServer.close();
});

const hello = () => fx.emu.serviceRunUrls.hello![0]!;

test('intercept: undici (Node\'s HTTPS client) through HTTPS_PROXY with the proxy CA: 200, and the upstream saw the token', { timeout: 30_000 }, async () => {
  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: caPem } });
  try {
    const res = await request(`${hello()}/through-the-sidecar`, { dispatcher });
    assert.equal(res.statusCode, 200);
    const echo = (await res.body.json()) as { caller: string; path: string; audience: string };
    assert.equal(echo.caller, 'caller@demo-project.iam.gserviceaccount.com', 'the token was added inside the tunnel');
    assert.equal(echo.audience, hello());
    assert.equal(echo.path, '/through-the-sidecar');
  } finally {
    await dispatcher.close();
  }
});

test('intercept: curl over HTTP/2 and HTTP/1.1 (ALPN inside the tunnel)', { skip: hasCurl ? false : 'curl is not installed', timeout: 30_000 }, async () => {
  const caFile = join(caDir, 'ca.pem');
  for (const version of ['--http2', '--http1.1']) {
    const { stdout } = await run$('curl', ['-sS', version, '--proxy', proxy.url, '--cacert', caFile, '-w', '\n%{http_code} %{http_version}', `${hello()}/`], { timeout: 30_000, env: { PATH: process.env.PATH! } });
    const [body, status] = stdout.split('\n');
    assert.equal(JSON.parse(body!).caller, 'caller@demo-project.iam.gserviceaccount.com');
    assert.equal(status, version === '--http2' ? '200 2' : '200 1.1');
  }
});

test('intercept: a host the allowlist does not admit is tunnelled untouched: the client sees the upstream\'s own certificate', { timeout: 30_000 }, async () => {
  const port = (foreignServer.address() as { port: number }).port;
  const certificate = await new Promise<X509Certificate>((resolve, reject) => {
    // CONNECT first, then TLS on the same socket, as a client library does.
    const raw = netConnect(Number(new URL(proxy.url).port), '127.0.0.1', () => raw.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    raw.once('data', (chunk: Buffer) => {
      assert.match(chunk.toString(), /^HTTP\/1\.1 200/);
      const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: foreign.certPem }, () => {
        resolve(new X509Certificate(tls.getPeerCertificate().raw));
        tls.destroy();
      });
      tls.on('error', reject);
    });
    raw.on('error', reject);
  });
  assert.match(certificate.issuer, /someone else/, 'the upstream\'s certificate, not one from the proxy\'s CA');
});

test('intercept: an upstream whose certificate does not verify gets nothing: 502 TLS_ERROR', { timeout: 30_000 }, async () => {
  const before = foreignHits;
  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: caPem } });
  try {
    const res = await request('https://bad.run.app/secret', { dispatcher });
    assert.equal(res.statusCode, 502);
    const body = (await res.body.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'TLS_ERROR', JSON.stringify(body));
    assert.equal(foreignHits, before, 'no request (and so no token) reached it');
  } finally {
    await dispatcher.close();
  }
});

test('intercept: the generated CA: name-constrained to the allowlist, files 0700/0600, the same CA on the next start', { timeout: 30_000 }, async () => {
  assert.equal((await stat(caDir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(caDir, 'ca-key.pem'))).mode & 0o777, 0o600);
  const again = await loadOrCreateCa({ caDir, allowHosts: ['*.run.app'], now: Date.now() });
  assert.equal(again.ca.certPem, caPem, 'reused');
  assert.equal(again.generated, false);
  // Enforced, not just written: a leaf the CA's key signs for another site fails verification against the CA.
  const key = await readFile(join(caDir, 'ca-key.pem'), 'utf8');
  const rogue = loadCertificateAuthority(caPem, key).issue(['www.google.com'], { now: Date.now() });
  const server = createHttpsServer({ cert: rogue.certPem, key: rogue.keyPem }, (_q, r) => r.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const error = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, servername: 'www.google.com', ca: caPem }, () => resolve('authorized'));
      s.on('error', (e: Error) => resolve(e.message));
    });
    assert.match(error, /permitted subtree violation/);
  } finally {
    server.close();
  }
});

test('intercept: the CLI: --intercept-tls needs --forward (exit 2); proxy ca-cert prints the certificate and never the key', { timeout: 30_000 }, async () => {
  const wrong = await idcall(['proxy', '--target', 'https://hello-123456789012.us-central1.run.app', '--intercept-tls'], cleanEnv(fx.dir.path));
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--intercept-tls goes with --forward/);
  const dir = await mkdtemp(join(tmpdir(), 'idcall-ca-'));
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c) => (out += c));
  const code = await run(['proxy', 'ca-cert', '--ca-dir', dir], { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: cleanEnv(dir) });
  assert.equal(code, 0);
  assert.match(out, /^-----BEGIN CERTIFICATE-----/);
  assert.doesNotMatch(out, /PRIVATE KEY/);
  assert.equal(out, await readFile(join(dir, 'ca.pem'), 'utf8'));
  // A CA for every site is never made: '*' cannot be name-constrained.
  for (const hosts of [['*'], ['*', '*.run.app']]) {
    const star = await idcall(['proxy', '--forward', '--intercept-tls', ...hosts.flatMap((h) => ['--allow-host', h]), '--ca-dir', join(dir, 'star'), '--listen', '127.0.0.1:0'], cleanEnv(fx.dir.path));
    assert.equal(star.code, 2, star.stderr);
    assert.match(star.stderr, /USAGE_ERROR[\s\S]*--intercept-tls needs --allow-host domains/);
  }
});

/** Whether a client trusting only `ca` refuses a leaf it issued for the IP address `ip` (served on 127.0.0.1). */
async function handshakeFails(ca: import('../../src/core/net/certificates.ts').CertificateAuthority, ip: string): Promise<boolean> {
  const leaf = ca.issue([ip], { now: Date.now() });
  const { createServer: createTls } = await import('node:tls');
  const server = createTls({ cert: leaf.certPem, key: leaf.keyPem });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<boolean>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, ca: ca.certPem, checkServerIdentity: () => undefined }, () => (resolve(!socket.authorized), socket.destroy()));
      socket.on('error', () => resolve(true));
    });
  } finally {
    server.close();
  }
}

test('intercept: a generated CA excludes IP addresses, and one generated before that (constraints recorded as a bare list) is replaced', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'idcall-ca-'));
  const { writeFile } = await import('node:fs/promises');
  const first = await loadOrCreateCa({ caDir: dir, allowHosts: ['*.run.app', '10.0.0.5:443'], now: Date.now() });
  assert.equal(first.generated, true);
  assert.deepEqual(constraintsFor(['*.run.app', '10.0.0.5:443', 'API.example.com:8443']), ['api.example.com', 'run.app'], 'an IP allowlist entry is no DNS constraint (SNI never names one)');
  // IP addresses are excluded outright (certificates.test.ts proves a client refuses such a leaf).
  assert.equal((await handshakeFails(first.ca, '10.0.0.5')), true);
  await writeFile(join(dir, 'constraints.json'), '["run.app"]\n');
  const again = await loadOrCreateCa({ caDir: dir, allowHosts: ['*.run.app'], now: Date.now() });
  assert.equal(again.generated, true, 'the old-format CA is replaced');
  const reused = await loadOrCreateCa({ caDir: dir, allowHosts: ['*.run.app'], now: Date.now() });
  assert.equal(reused.generated, false, 'a current one is reused');
});

test('intercept: gRPC over TLS through the sidecar: HTTP/2 by ALPN, the token added, trailers back', { timeout: 30_000 }, async () => {
  // CONNECT, then TLS with ALPN h2 on the tunnel, then an HTTP/2 session over it: what a gRPC client behind HTTPS_PROXY does.
  const raw = netConnect(Number(new URL(proxy.url).port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', () => raw.write('CONNECT grpc.run.app:443 HTTP/1.1\r\nHost: grpc.run.app:443\r\n\r\n'));
    raw.once('data', (chunk: Buffer) => (/^HTTP\/1\.1 200/.test(chunk.toString()) ? resolve() : reject(new Error(chunk.toString()))));
    raw.once('error', reject);
  });
  const session = http2Connect('https://grpc.run.app', { createConnection: () => tlsConnect({ socket: raw, servername: 'grpc.run.app', ca: caPem, ALPNProtocols: ['h2'] }) });
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/demo.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    const [headers, trailers] = await Promise.all([new Promise<Record<string, unknown>>((r) => stream.once('response', r)), new Promise<Record<string, unknown>>((r) => stream.once('trailers', r))]);
    stream.resume();
    assert.equal(headers[':status'], 200);
    assert.equal(trailers['grpc-status'], '0');
    assert.equal(trailers['x-saw-token'], 'yes', 'the service saw the ID token');
    assert.equal(trailers['x-saw-te'], 'trailers');
  } finally {
    session.destroy();
    raw.destroy();
  }
});

test('intercept: an allowed name whose connection reaches the metadata server (GCE_METADATA_HOST) is refused inside the tunnel, over HTTP/1.1 and HTTP/2, and it sees nothing', { timeout: 30_000 }, async () => {
  // grpc.run.app is routed to the gRPC server; this proxy is told that address is the metadata server.
  const grpcPort = (grpcServer.address() as { port: number }).port;
  const env = { HOME: fx.dir.path, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none' };
  const { ca } = await loadOrCreateCa({ caDir, allowHosts: ['*.run.app'], now: Date.now() });
  const guarded = (
    await proxyFor(env, {
      mode: 'forward',
      allowHosts: ['*.run.app'],
      metadataHosts: [`127.0.0.1:${grpcPort}`],
      interceptTls: leafCache(ca, Date.now),
      routing: { connectTo: [parseConnectTo(`grpc.run.app:443:localhost:${grpcPort}`)], resolve: [], ca: trusted.certPem },
    })
  ).proxy;
  let streams = 0;
  const count = () => streams++;
  grpcServer.on('stream', count);
  const dispatcher = new ProxyAgent({ uri: guarded.url, requestTls: { ca: caPem } });
  let raw: import('node:net').Socket | undefined;
  try {
    const res = await request('https://grpc.run.app/computeMetadata/v1/instance/service-accounts/default/token', { dispatcher, headers: { 'metadata-flavor': 'Google' } });
    assert.equal(res.statusCode, 403, await res.body.text());
    raw = netConnect(Number(new URL(guarded.url).port), '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      raw!.once('connect', () => raw!.write('CONNECT grpc.run.app:443 HTTP/1.1\r\nHost: grpc.run.app:443\r\n\r\n'));
      raw!.once('data', (chunk: Buffer) => (/^HTTP\/1\.1 200/.test(chunk.toString()) ? resolve() : reject(new Error(chunk.toString()))));
      raw!.once('error', reject);
    });
    const session = http2Connect('https://grpc.run.app', { createConnection: () => tlsConnect({ socket: raw!, servername: 'grpc.run.app', ca: caPem, ALPNProtocols: ['h2'] }) });
    const stream = session.request({ ':path': '/computeMetadata/v1/', 'metadata-flavor': 'Google' });
    stream.end();
    const headers = await new Promise<Record<string, unknown>>((r) => stream.once('response', r));
    stream.resume();
    assert.equal(headers[':status'], 403);
    session.destroy();
    assert.equal(streams, 0, 'the "metadata server" saw no request');
  } finally {
    grpcServer.off('stream', count);
    raw?.destroy();
    await dispatcher.close();
    await guarded.close();
  }
});

test('intercept: a request another site\'s page made through a browser using the proxy gets 403 and no token, over HTTP/1.1 and HTTP/2', { timeout: 30_000 }, async () => {
  const before = fx.emu.requests.length;
  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: caPem } });
  try {
    const res = await request(`${hello()}/delete`, { dispatcher, method: 'POST', headers: { origin: 'https://evil.example' } });
    assert.equal(res.statusCode, 403);
    assert.match(await res.body.text(), /evil\.example/);
    const own = await request(`${hello()}/own`, { dispatcher, headers: { origin: hello(), 'sec-fetch-site': 'same-origin' } });
    assert.equal(own.statusCode, 200, 'the host\'s own page is served with the token');
    await own.body.dump();
  } finally {
    await dispatcher.close();
  }
  const raw = netConnect(Number(new URL(proxy.url).port), '127.0.0.1');
  const host = new URL(hello()).host;
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', () => raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`));
    raw.once('data', (chunk: Buffer) => (/^HTTP\/1\.1 200/.test(chunk.toString()) ? resolve() : reject(new Error(chunk.toString()))));
    raw.once('error', reject);
  });
  const session = http2Connect(hello(), { createConnection: () => tlsConnect({ socket: raw, servername: host, ca: caPem, ALPNProtocols: ['h2'] }) });
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/delete', 'sec-fetch-site': 'cross-site' });
    stream.end();
    const headers = await new Promise<Record<string, unknown>>((r) => stream.once('response', r));
    stream.resume();
    assert.equal(headers[':status'], 403);
  } finally {
    session.destroy();
    raw.destroy();
  }
  assert.equal(fx.emu.requests.slice(before).filter((r) => r.path?.startsWith('/delete')).length, 0, 'the service never saw the page\'s requests');
});

test('intercept: tunnels whose client leaves before, during or just after the TLS handshake free their sockets (no CLOSE-WAIT left behind)', { timeout: 30_000 }, async () => {
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  const before = sockets();
  const host = new URL(hello()).host;
  const clients: import('node:net').Socket[] = [];
  const tunnel = (kind: 'idle' | 'handshake' | 'after-handshake') =>
    new Promise<void>((resolve) => {
      const raw = netConnect(Number(new URL(proxy.url).port), '127.0.0.1');
      clients.push(raw);
      raw.on('error', () => {});
      // Resolved once the client has sent its FIN: whether the proxy closes its side is what is measured.
      raw.once('finish', () => resolve());
      raw.once('close', () => resolve());
      raw.once('connect', () => raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`));
      raw.once('data', () => {
        if (kind === 'idle') return void raw.end();
        const tls = tlsConnect({ socket: raw, servername: host, ca: caPem, ALPNProtocols: ['http/1.1'] });
        tls.on('error', () => raw.destroy());
        if (kind === 'handshake') return void setImmediate(() => raw.end());
        tls.once('secureConnect', () => tls.end());
      });
    });
  const kinds = ['idle', 'handshake', 'after-handshake'] as const;
  try {
    await Promise.all(Array.from({ length: 30 }, (_, i) => tunnel(kinds[i % 3]!)));
    // Before, each of these stayed open on the proxy's side (half-open sockets from node:http) until the process ended.
    await eventually(() => sockets() <= before + 4, 10_000, `the proxy's sockets to close (${sockets()} open, ${before} before)`);
  } finally {
    for (const c of clients) c.destroy();
  }
});

test('intercept: node:https through HTTPS_PROXY (Node\'s own proxy agent) with the CA: 200 as the caller', { timeout: 30_000 }, async () => {
  const https = await import('node:https');
  const agent = new https.Agent({ proxyEnv: { HTTPS_PROXY: proxy.url }, ca: caPem } as import('node:https').AgentOptions);
  try {
    const body = await new Promise<string>((resolve, reject) => {
      https.get(`${hello()}/via-node-https`, { agent }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode} ${text}`))));
      }).on('error', reject);
    });
    assert.equal(JSON.parse(body).caller, 'caller@demo-project.iam.gserviceaccount.com');
  } finally {
    agent.destroy();
  }
});

test('intercept: a --ca-dir that cannot be written is one usage line (exit 2), not an unexpected error', { timeout: 30_000 }, async () => {
  const blocked = join(fx.dir.path, 'a-file');
  await (await import('node:fs/promises')).writeFile(blocked, 'not a directory');
  const result = await idcall(['proxy', 'ca-cert', '--ca-dir', join(blocked, 'ca')], cleanEnv(fx.dir.path));
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^error \[USAGE_ERROR\]: --ca-dir .*cannot be written there/);
});
