// Unmodified clients with only the emulator's google-env.sh (HTTPS_PROXY, the CA, the metadata address, credential
// files with Google's real URLs): idcall needs no IDCALL_* override, google-auth-library and curl reach Google's host
// names, and the answers agree. Each case skips with the reason when its client is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { emulatorFixture, idcall, json } from '../helpers/cli.ts';

const run = promisify(execFile);
const fx = emulatorFixture();
const hello = () => fx.emu.serviceRunUrls.hello![0]!;
/** google-env.sh and nothing else of this machine's but PATH and a HOME. */
const googleEnv = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH!, HOME: fx.dir.path, ...fx.creds.googleEnv!, ...extra });
const hasCurl = spawnSync('curl', ['--version']).status === 0;
const hasGcloud = spawnSync('gcloud', ['--version'], { timeout: 20_000 }).status === 0;

test('idcall with only the proxy environment: call, token and doctor, no IDCALL_* override', async () => {
  const env = googleEnv();
  assert.ok(!Object.keys(env).some((k) => k.startsWith('IDCALL_')));
  const called = json(await idcall(['call', `${hello()}/`, '--json'], env));
  assert.equal(called.verdict.code, 'OK', called.verdict.summary);
  assert.match(called.steps.find((s: any) => s.id === 'mint').requests[0].url, /^https:\/\/oauth2\.googleapis\.com\/token/);
  const doctor = json(await idcall(['doctor', '--json'], env));
  assert.equal(doctor.verdict.code, 'OK', doctor.verdict.summary);
  const denied = json(await idcall(['call', `${fx.emu.serviceRunUrls.private![0]}/`, '--json'], env));
  assert.equal(denied.verdict.code, 'INVOKER_DENIED');
  assert.match(denied.verdict.fix, /gcloud run services add-iam-policy-binding private --region=us-central1/);
});

/** Run a snippet of google-auth-library in a fresh Node, as an application would, with `env` as its whole environment. */
async function withGoogleAuthLibrary(code: string, env: Record<string, string>): Promise<any> {
  const script = `import { GoogleAuth, OAuth2Client } from 'google-auth-library';\nconst out = await (async () => { ${code} })();\nprocess.stdout.write(JSON.stringify(out));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env, cwd: new URL('../..', import.meta.url).pathname, timeout: 60_000 });
  return JSON.parse(stdout);
}

const decode = `const claims = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());`;
const libraryCases: { name: string; file: () => string; code: () => string; check: (out: any) => void }[] = [
  {
    name: 'a service-account key: getIdTokenClient, and verifyIdToken on what it mints',
    file: () => `${fx.creds.files.google}/service-account.json`,
    code: () => `${decode} const aud = ${JSON.stringify(hello())}; const client = await new GoogleAuth().getIdTokenClient(aud); const token = await client.idTokenProvider.fetchIdToken(aud); const ticket = await new OAuth2Client().verifyIdToken({ idToken: token, audience: aud }); return { aud: claims(token).aud, email: ticket.getPayload().email };`,
    check: (out) => assert.deepEqual(out, { aud: hello(), email: 'caller@demo-project.iam.gserviceaccount.com' }),
  },
  {
    name: 'an impersonated_service_account file: getIdTokenClient',
    file: () => `${fx.creds.files.google}/impersonated.json`,
    code: () => `${decode} const aud = ${JSON.stringify(hello())}; const client = await new GoogleAuth().getIdTokenClient(aud); const token = await client.idTokenProvider.fetchIdToken(aud); const ticket = await new OAuth2Client().verifyIdToken({ idToken: token, audience: aud }); return { aud: claims(token).aud, verified: ticket.getPayload().aud === aud };`,
    check: (out) => assert.deepEqual(out, { aud: hello(), verified: true }),
  },
  {
    name: 'the metadata server (no credential file): getIdTokenClient with format=full, verifyIdToken',
    file: () => '',
    code: () => `${decode} const aud = ${JSON.stringify(hello())}; const client = await new GoogleAuth().getIdTokenClient(aud); const token = await client.idTokenProvider.fetchIdToken(aud); const ticket = await new OAuth2Client().verifyIdToken({ idToken: token, audience: aud }); return { aud: claims(token).aud, email: ticket.getPayload().email };`,
    check: (out) => assert.deepEqual(out, { aud: hello(), email: 'runtime@demo-project.iam.gserviceaccount.com' }),
  },
  {
    name: 'the user file: getClient() access token',
    file: () => `${fx.creds.files.google}/authorized-user.json`,
    code: () => `const client = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getClient(); const { token } = await client.getAccessToken(); return { token: token.slice(0, 5) };`,
    check: (out) => assert.deepEqual(out, { token: 'ya29.' }),
  },
  {
    name: 'the external_account file: getClient() access token through STS and impersonation',
    file: () => `${fx.creds.files.google}/external-account.json`,
    code: () => `const client = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getClient(); const { token } = await client.getAccessToken(); return { token: token.slice(0, 5) };`,
    check: (out) => assert.deepEqual(out, { token: 'ya29.' }),
  },
];
for (const c of libraryCases) {
  test(`google-auth-library, unpatched, through the proxy environment: ${c.name}`, async () => {
    const env = googleEnv(c.file() ? { GOOGLE_APPLICATION_CREDENTIALS: c.file() } : {});
    // No file at all: ADC falls through to gcloud's login and then the metadata server; both are removed here but the last.
    if (!c.file()) for (const k of ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_CONFIG']) delete (env as Record<string, string>)[k];
    c.check(await withGoogleAuthLibrary(c.code(), env));
  });
}

test('curl through the proxy environment: 200 with idcall\'s token, 403 without, and a host the emulator does not emulate is refused', { skip: hasCurl ? false : 'curl is not installed' }, async () => {
  const env = googleEnv();
  const token = (await idcall(['token', '--audience', hello()], env, {}, { tokenAllowedOn: 'stdout' })).stdout.trim();
  const status = async (...args: string[]) => (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...args], { env, timeout: 30_000 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout;
  assert.equal(await status('-H', `Authorization: Bearer ${token}`, `${hello()}/`), '200');
  assert.equal(await status(`${hello()}/`), '403');
  assert.equal(await status('https://example.com/'), '000', 'CONNECT refused: the emulator is offline by design');
  // Google's bodies and headers, as curl sees them: the 401 page and WWW-Authenticate for a token for another service.
  const other = (await idcall(['token', '--audience', fx.emu.serviceRunUrls.private![0]!], env, {}, { tokenAllowedOn: 'stdout' })).stdout.trim();
  const { stdout } = await run('curl', ['-sS', '-i', '-H', `Authorization: Bearer ${other}`, `${hello()}/`], { env, timeout: 30_000 });
  assert.match(stdout, /^HTTP\/2 401/m, "(after the proxy's 200 Connection Established)");
  assert.match(stdout, /www-authenticate: Bearer error="invalid_token" error_description="The access token could not be verified"/i);
  assert.match(stdout, /server: Google Frontend/i);
  assert.match(stdout, /<h1>Error: Unauthorized<\/h1>/);
  const denied = await run('curl', ['-sS', '-i', '-H', `Authorization: Bearer ${other}`, `${fx.emu.serviceRunUrls.private![0]}/`], { env, timeout: 30_000 });
  assert.match(denied.stdout, /^HTTP\/2 403/m);
  assert.match(denied.stdout, /Your client does not have permission to get URL <code>\/<\/code> from this server\./);
});

test('gcloud through the proxy environment, with credential files carrying Google\'s own URLs', { skip: hasGcloud ? false : 'gcloud is not installed' }, async () => {
  const env = googleEnv({ CLOUDSDK_CORE_DISABLE_PROMPTS: '1', CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1' });
  const { stdout } = await run('gcloud', ['auth', 'print-identity-token', '--impersonate-service-account=invoker@demo-project.iam.gserviceaccount.com', `--audiences=${hello()}`, '--include-email'], { env, timeout: 60_000 });
  const token = stdout.trim();
  const answer = await run('curl', ['-sS', '-H', `Authorization: Bearer ${token}`, `${hello()}/`], { env, timeout: 30_000 }).catch(() => ({ stdout: '' }));
  if (hasCurl) assert.equal(JSON.parse(answer.stdout).caller, 'invoker@demo-project.iam.gserviceaccount.com');
  else assert.match(token, /^eyJ/);
});

test('gcloud auth login --cred-file with the external-account file, then print-access-token, through the proxy environment', { skip: hasGcloud ? false : 'gcloud is not installed' }, async () => {
  const { mkdtemp } = await import('node:fs/promises');
  const env = googleEnv({ CLOUDSDK_CONFIG: await mkdtemp(`${fx.dir.path}/gcloud-wif-`), CLOUDSDK_CORE_DISABLE_PROMPTS: '1', CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1' });
  await run('gcloud', ['auth', 'login', `--cred-file=${fx.creds.files.google}/external-account.json`], { env, timeout: 60_000 });
  const { stdout } = await run('gcloud', ['auth', 'print-access-token'], { env, timeout: 60_000 });
  assert.match(stdout.trim(), /^ya29\./);
});

test('requests through the emulator\'s proxy (HTTPS_PROXY) are logged and take faults, like those to its own ports', async () => {
  const { ProxyAgent, request } = await import('undici');
  const dispatcher = new ProxyAgent({ uri: fx.creds.googleEnv!.HTTPS_PROXY!, requestTls: { ca: fx.emu.caPem } });
  try {
    const before = fx.emu.requests.length;
    const refused = await request('https://oauth2.googleapis.com/token', { dispatcher, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=nonsense' });
    assert.equal(refused.statusCode, 400);
    await refused.body.dump();
    const service = await request(`${hello()}/logged`, { dispatcher });
    assert.equal(service.statusCode, 403, 'no token: Cloud Run\'s 403');
    await service.body.dump();
    const seen = fx.emu.requests.slice(before).map((r) => `${r.endpoint} ${r.path} ${r.status}`);
    assert.ok(seen.includes('token /token 400'), seen.join(', '));
    assert.ok(seen.includes('service:hello /logged 403'), seen.join(', '));
    fx.emu.setFaults([{ endpoint: 'token', kind: 'status', status: 503 }]);
    const faulted = await request('https://oauth2.googleapis.com/token', { dispatcher, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=nonsense' });
    assert.equal(faulted.statusCode, 503, 'the fault applies through the proxy too');
    await faulted.body.dump();
  } finally {
    fx.emu.setFaults([]);
    await dispatcher.close();
  }
});
