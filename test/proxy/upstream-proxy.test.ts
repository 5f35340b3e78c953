// `idcall proxy` behind a corporate proxy: upstream requests go through HTTP(S)_PROXY (unless NO_PROXY), the start
// line says so, and a proxy variable naming the sidecar itself is ignored rather than looping.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { closedPort, emulatorFixture } from '../helpers/cli.ts';
import { forwardProxy, type ForwardProxy } from '../helpers/forward-proxy.ts';
import { sidecar } from '../helpers/proxy.ts';

let corporate: ForwardProxy;
const fx = emulatorFixture(undefined, async (fx) => {
  corporate = await forwardProxy(() => ({ 'svc.test': fx.emu.urls.services.hello! }));
});
after(() => corporate.close());

const env = (extra: Record<string, string>) => ({
  HOME: fx.dir.path,
  GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount,
  METADATA_SERVER_DETECTION: 'none',
  IDCALL_CERTS_URL: fx.emu.urls.jwks,
  ...extra,
});

test('reverse mode through HTTP_PROXY: the upstream request goes through the corporate proxy with the token', async () => {
  corporate.seen.length = 0;
  const audience = fx.emu.serviceRunUrls.hello![0]!;
  const side = await sidecar(['--target', 'http://svc.test', '--allow-insecure', '--audience', audience, '--listen', '127.0.0.1:0'], env({ HTTP_PROXY: corporate.url }));
  try {
    const res = await request(`${side.url}/hi`);
    assert.equal(res.statusCode, 200, await res.body.text());
    assert.deepEqual(corporate.seen, ['GET http://svc.test/hi']);
    assert.match(side.printed(), new RegExp(`→ http://svc\\.test through the proxy ${corporate.url.replace(/\./g, '\\.')}`));
  } finally {
    assert.equal(await side.stop(), 0);
  }
});

test('a proxy variable naming the sidecar itself is ignored, not looped through', async () => {
  const audience = fx.emu.serviceRunUrls.hello![0]!;
  const port = await closedPort();
  const side = await sidecar(['--target', 'http://svc.test', '--allow-insecure', '--audience', audience, '--listen', `127.0.0.1:${port}`], env({ HTTP_PROXY: `http://127.0.0.1:${port}` }));
  try {
    // Directly, svc.test does not resolve: one request, one 502, rather than the sidecar calling itself forever.
    const res = await request(`${side.url}/`, { headersTimeout: 5000 });
    assert.equal(res.statusCode, 502);
    await res.body.dump();
    assert.equal(side.printed().match(/ GET svc\.test \//g)?.length, 1, side.printed());
  } finally {
    await side.stop();
  }
});

/** A corporate proxy that only tunnels (CONNECT), mapping made-up host:port pairs to local ones, as HTTP/2 needs. */
async function connectProxy(map: () => Record<string, string>, refuse = false) {
  const { createServer } = await import('node:http');
  const { connect } = await import('node:net');
  const seen: string[] = [];
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, socket: import('node:net').Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url} ${req.headers['proxy-authorization'] ?? '-'}`);
    socket.on('error', () => {});
    const to = map()[req.url!];
    if (refuse || !to) return void socket.end(`HTTP/1.1 ${refuse ? '403 Forbidden' : '502 Bad Gateway'}\r\n\r\n`);
    const up = connect(Number(to.split(':')[1]), to.split(':')[0], () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

/** One HTTP/2 GET through the sidecar's h2c port: status and body. */
async function h2get(url: string, path: string) {
  const { connect } = await import('node:http2');
  const session = connect(url);
  session.on('error', () => {});
  try {
    const req = session.request({ ':path': path });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    await new Promise<void>((resolve, reject) => (req.on('end', resolve), req.on('error', reject)));
    return { status, body };
  } finally {
    session.close();
  }
}

test('--h2c through HTTPS_PROXY: HTTP/2 upstreams go through the corporate proxy\'s CONNECT tunnel (with its credentials), TLS to the real name inside; a refusing proxy is a 502 that names it', async () => {
  const run = new URL(fx.emu.serviceRunUrls.hello![0]!);
  const frontDoor = fx.emu.connectTo.find((c) => c.startsWith(`${run.hostname}:443:`))!.split(':').slice(2).join(':');
  const tunnels = await connectProxy(() => ({ [`${run.hostname}:443`]: frontDoor }));
  const refusing = await connectProxy(() => ({}), true);
  try {
    const proxyUrl = tunnels.url.replace('http://', 'http://ops:s3cret@');
    const side = await sidecar(['--target', run.origin, '--h2c', '--listen', '127.0.0.1:0'], env({ HTTPS_PROXY: proxyUrl, IDCALL_CACERT: fx.creds.files.ca! }));
    try {
      // Before, HTTP/2 upstreams ignored HTTPS_PROXY and resolved the name themselves: 502 "host name not found".
      const res = await h2get(side.url, '/through-corporate');
      assert.equal(res.status, 200, res.body);
      assert.equal(JSON.parse(res.body).caller, 'caller@demo-project.iam.gserviceaccount.com');
      assert.ok(tunnels.seen.some((s) => s === `CONNECT ${run.hostname}:443 Basic ${Buffer.from('ops:s3cret').toString('base64')}`), tunnels.seen.join(', '));
      assert.ok(!side.printed().includes('s3cret'), 'the proxy\'s password is never printed');
    } finally {
      assert.equal(await side.stop(), 0);
    }
    // A proxy that hangs up before answering CONNECT: a prompt 502, not a stream left waiting for good.
    const { createServer: createTcp } = await import('node:net');
    const hangup = createTcp((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((r) => hangup.listen(0, '127.0.0.1', r));
    const dropped = await sidecar(['--target', run.origin, '--h2c', '--listen', '127.0.0.1:0'], env({ HTTPS_PROXY: `http://127.0.0.1:${(hangup.address() as { port: number }).port}`, IDCALL_CACERT: fx.creds.files.ca! }));
    try {
      assert.equal((await h2get(dropped.url, '/dropped')).status, 502);
    } finally {
      assert.equal(await dropped.stop(), 0);
      hangup.close();
    }
    const denied = await sidecar(['--target', run.origin, '--h2c', '--listen', '127.0.0.1:0'], env({ HTTPS_PROXY: refusing.url, IDCALL_CACERT: fx.creds.files.ca! }));
    try {
      const res = await h2get(denied.url, '/refused');
      assert.equal(res.status, 502, res.body);
      assert.match(JSON.parse(res.body).error.message, /: the proxy refused the tunnel \(403 Forbidden\)$/);
      assert.ok(!denied.printed().includes('s3cret'));
    } finally {
      assert.equal(await denied.stop(), 0);
    }
  } finally {
    await tunnels.close();
    await refusing.close();
  }
});
