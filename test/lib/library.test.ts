// The library exports, against the emulator: getIdToken, idTokenFetch, the undici interceptor, diagnose, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { clearIdTokenCache, diagnose, getIdToken, idTokenFetch, idTokenInterceptor, IdcallError } from '../../src/index.ts';
import { cleanEnv, idcall, json, emulatorFixture } from '../helpers/cli.ts';

const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const fx = emulatorFixture(undefined, ({ emu }) => emu.grant({ kind: 'service', name: 'private' }, 'roles/run.invoker', `serviceAccount:${SA('caller')}`));
const tokenRequests = () => fx.emu.requests.filter((r) => r.endpoint === 'token').length;

const env = (extra: Record<string, string | undefined> = {}) => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });

test('getIdToken: token, claims and source', async () => {
  clearIdTokenCache();
  const { token, claims, source } = await getIdToken({ audience: ' https://svc.example/path ', env: env() });
  assert.match(token, /^eyJ/);
  assert.equal(claims.aud, 'https://svc.example/path', 'the audience exactly as given, trimmed');
  assert.equal(claims.email, SA('caller'));
  assert.deepEqual([source.type, source.origin], ['service_account', 'GOOGLE_APPLICATION_CREDENTIALS']);
});

test('getIdToken with impersonation', async () => {
  const { claims } = await getIdToken({ audience: 'https://svc.example', impersonateServiceAccount: SA('invoker'), env: env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }) });
  assert.equal(claims.email, SA('invoker'));
});

test('errors are IdcallError with a code, a fix and the cause', async () => {
  await assert.rejects(getIdToken({ audience: 'https://svc.example', impersonateServiceAccount: SA('no-access'), env: env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }) }), (err: unknown) => {
    assert.ok(err instanceof IdcallError);
    assert.equal(err.code, 'IMPERSONATION_DENIED');
    assert.match(err.fix, /roles\/iam\.serviceAccountTokenCreator/);
    assert.ok(err.cause);
    return true;
  });
  await assert.rejects(getIdToken({ audience: 'https://svc.example', env: cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none' }) }), { code: 'NO_CREDENTIALS' });
});

test('idTokenFetch: two services with different audiences share one cache (one mint each)', async () => {
  clearIdTokenCache();
  const before = tokenRequests();
  const fetchWithToken = idTokenFetch({ env: env() });
  for (let i = 0; i < 3; i++) {
    for (const name of ['hello', 'private']) {
      const res = await fetchWithToken(`${fx.emu.urls.services[name]}/x?i=${i}`);
      assert.equal(res.status, 200);
      const echo = (await res.json()) as { audience: string; caller: string };
      assert.equal(echo.audience, fx.emu.urls.services[name]);
      assert.equal(echo.caller, SA('caller'));
    }
  }
  const second = idTokenFetch({ env: env() });
  assert.equal((await second(`${fx.emu.urls.services.hello}/`)).status, 200);
  assert.equal(tokenRequests() - before, 2, 'one token request per audience, shared across fetch functions');
});

test('idTokenFetch keeps the application\'s Authorization header and sends no token to origins it does not allow', async () => {
  const fetchWithToken = idTokenFetch({ env: env(), allow: (origin) => origin === fx.emu.urls.services.hello });
  const echo = (await (await fetchWithToken(`${fx.emu.urls.services.hello}/`, { headers: { authorization: 'Basic YTpi' } })).json()) as { via: string; applicationAuthorization?: string };
  assert.equal(echo.via, 'X-Serverless-Authorization');
  assert.equal(echo.applicationAuthorization, 'present');
  assert.equal((await fetchWithToken(`${fx.emu.urls.services.private}/`)).status, 403, 'no token for an origin that is not allowed');
});

test('idTokenInterceptor in a real undici Agent', async () => {
  const agent = new Agent().compose(idTokenInterceptor({ env: env(), headerName: 'X-Serverless-Authorization' }));
  try {
    const res = await request(`${fx.emu.urls.services.hello}/via-agent`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    const echo = (await res.body.json()) as { via: string; path: string };
    assert.equal(echo.via, 'X-Serverless-Authorization');
    assert.equal(echo.path, '/via-agent');
    const failing = new Agent().compose(idTokenInterceptor({ env: cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none' }) }));
    await assert.rejects(request(`${fx.emu.urls.services.hello}/`, { dispatcher: failing }), { code: 'NO_CREDENTIALS' });
    await failing.close();
  } finally {
    await agent.close();
  }
});

test('diagnose returns the same report as `idcall call --json`', async () => {
  const url = `${fx.emu.urls.services.hello}/d`;
  const report = await diagnose(url, { env: env() });
  const cli = json(await idcall(['call', url, '--json'], env()));
  assert.equal(report.verdict.code, 'OK');
  assert.deepEqual(Object.keys(report).sort(), Object.keys(cli).sort());
  assert.deepEqual(report.steps.map((s) => [s.id, s.status]), cli.steps.map((s: { id: string; status: string }) => [s.id, s.status]));
  assert.ok(!JSON.stringify(report).includes('eyJhbGci'), 'no raw token in the report');
});

test('idTokenFetch: a cloudfunctions.net URL gets a token for its function URL, as `idcall call` mints', async () => {
  const seen: string[] = [];
  const capture: typeof fetch = async (input) => {
    const request = input instanceof Request ? input : new Request(input);
    seen.push(request.headers.get('authorization') ?? '');
    return new Response('ok');
  };
  const fetchWithToken = idTokenFetch({ env: env(), fetch: capture });
  await fetchWithToken('https://us-central1-demo-project.cloudfunctions.net/orders/v1/list?x=1');
  await fetchWithToken('https://hello-123456789012.us-central1.run.app/v1/list');
  const auds = seen.map((h) => JSON.parse(Buffer.from(h.slice('Bearer '.length).split('.')[1]!, 'base64url').toString()).aud);
  assert.deepEqual(auds, ['https://us-central1-demo-project.cloudfunctions.net/orders', 'https://hello-123456789012.us-central1.run.app']);
});

test('idTokenFetch: plain http gets a token only on loopback, by the rule call and the proxy use (any spelling of 127.0.0.1)', async () => {
  const port = new URL(fx.emu.urls.services.hello!).port;
  const fetchWithToken = idTokenFetch({ env: env(), audience: () => fx.emu.urls.services.hello! });
  // Before, only 127.x, localhost and [::1] were recognised: this spelling got no token (403).
  const res = await fetchWithToken(`http://[::ffff:127.0.0.1]:${port}/mapped`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { caller: string }).caller, 'caller@demo-project.iam.gserviceaccount.com');
});
