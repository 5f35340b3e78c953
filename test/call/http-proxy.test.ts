// Behind a corporate proxy: Google's endpoints and the target go through HTTPS_PROXY/HTTP_PROXY unless NO_PROXY
// exempts them, and the report says which requests did. The proxy here maps made-up host names to the emulator,
// so the requests must have gone through it to succeed.
import { test, after } from 'node:test';
import { createServer } from 'node:net';
import assert from 'node:assert/strict';
import { cleanEnv, emulatorFixture, idcall, json } from '../helpers/cli.ts';
import { forwardProxy, type ForwardProxy } from '../helpers/forward-proxy.ts';

let proxy: ForwardProxy;
const fx = emulatorFixture(undefined, async (fx) => {
  proxy = await forwardProxy(() => ({ 'google.test': fx.emu.urls.google, 'svc.test': fx.emu.urls.services.hello! }));
});
after(() => proxy.close());

const env = (extra: Record<string, string | undefined>) =>
  cleanEnv(fx.dir.path, {
    GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount,
    IDCALL_TOKEN_URL: 'http://google.test/token',
    IDCALL_CERTS_URL: 'http://google.test/oauth2/v3/certs',
    IDCALL_AUTH_TIMEOUT: '3000',
    ...extra,
  });

test('HTTP_PROXY: the token request and the certificate fetch go through it, and the report says so', async () => {
  proxy.seen.length = 0;
  const report = json(await idcall(['token', '--audience', 'https://svc.example', '--json'], env({ HTTP_PROXY: proxy.url }), {}, { tokenAllowedOn: 'stdout' }));
  assert.equal(report.verdict.code, 'OK');
  assert.deepEqual(proxy.seen, ['POST http://google.test/token', 'GET http://google.test/oauth2/v3/certs']);
  const requests = report.steps.flatMap((s: { requests: { proxy?: string }[] }) => s.requests);
  assert.ok(requests.length === 2 && requests.every((r: { proxy?: string }) => r.proxy === proxy.url));
  const mint = report.steps.find((s: { id: string }) => s.id === 'mint');
  assert.ok(mint.details.includes(`through the proxy ${proxy.url} (HTTPS_PROXY/HTTP_PROXY)`), mint.details.join('\n'));
});

test('NO_PROXY exempts a host: idcall connects directly (and here finds no such host)', async () => {
  proxy.seen.length = 0;
  const result = await idcall(['token', '--audience', 'https://svc.example', '--json'], env({ HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,.test' }), {}, { tokenAllowedOn: 'stdout' });
  const report = json(result);
  assert.equal(result.code, 3);
  assert.equal(report.verdict.code, 'TOKEN_ENDPOINT_ERROR');
  assert.match(report.verdict.summary, /host name not found/);
  assert.deepEqual(proxy.seen, []);
});

test('a proxy that refuses: the failure names the proxy, not just the endpoint', async () => {
  const result = await idcall(['token', '--audience', 'https://svc.example', '--json'], env({ HTTP_PROXY: 'http://127.0.0.1:9' }), {}, { tokenAllowedOn: 'stdout' });
  const report = json(result);
  assert.equal(result.code, 3);
  assert.match(report.verdict.summary, /POST http:\/\/google\.test\/token through the proxy http:\/\/127\.0\.0\.1:9\): connection refused/);
});

test('call: the target goes through the proxy too, and the call step says so', async () => {
  proxy.seen.length = 0;
  const audience = fx.emu.serviceRunUrls.hello![0]!;
  const result = await idcall(['call', 'http://svc.test/', '--audience', audience, '--allow-insecure', '--json'], env({ HTTP_PROXY: proxy.url }));
  const report = json(result);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(report.verdict.code, 'OK');
  assert.ok(proxy.seen.includes('GET http://svc.test/'), proxy.seen.join(', '));
  const call = report.steps.find((s: { id: string }) => s.id === 'call');
  assert.ok(call.details.some((d: string) => d.includes(`through the proxy ${proxy.url}`)), call.details.join('\n'));
});

test('a proxy that refuses the tunnel (407): said in its words, and its credentials are not repeated', async () => {
  const refusing = createServer((s) => s.once('data', () => s.end('HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n')));
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  try {
    const port = (refusing.address() as { port: number }).port;
    const result = await idcall(['token', '--audience', 'https://svc.example', '--json'], env({ IDCALL_TOKEN_URL: 'https://google.test/token', HTTPS_PROXY: `http://ops:pr0xy-pa55@127.0.0.1:${port}` }), {}, { tokenAllowedOn: 'stdout' });
    const report = json(result);
    assert.equal(result.code, 3);
    assert.equal(report.verdict.code, 'TOKEN_ENDPOINT_ERROR');
    assert.match(report.verdict.summary, /through the proxy http:\/\/127\.0\.0\.1:\d+\): the proxy refused the tunnel \(HTTP\/1\.1 407 Proxy Authentication Required\)/);
    assert.ok(!(result.stdout + result.stderr).includes('pr0xy-pa55'), 'the proxy password is never printed');
  } finally {
    refusing.close();
  }
});
