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
