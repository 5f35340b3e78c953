// gcloud, a client nobody here wrote, with nothing but the emulator's written gcloud/ folder and env.sh: a real login
// (credentials.db, access_tokens.db), impersonation through IAM Credentials, and identity tokens that the emulated
// services and idcall accept. Skipped, with the reason, where gcloud is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cleanEnv, emulatorFixture, idcall, json } from '../helpers/cli.ts';

const run = promisify(execFile);
const gcloudPresent = await run('gcloud', ['--version'], { timeout: 20_000 }).then(() => true, () => false);
const skip = gcloudPresent ? false : 'gcloud is not installed on this machine';
const fx = emulatorFixture();
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

/** What `source env.sh` gives gcloud, plus the switches that keep it from prompting or phoning home. */
const gcloudEnv = () => ({ PATH: process.env.PATH!, HOME: fx.dir.path, ...fx.creds.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1', CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1', CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1' });
const gcloud = async (...args: string[]) => (await run('gcloud', args, { env: gcloudEnv(), timeout: 60_000 })).stdout.trim();

test('gcloud auth list: the written folder is a real login (the user, active, and the key\'s service account)', { skip }, async () => {
  const accounts = (await gcloud('auth', 'list', '--format=value(account)')).split('\n');
  // env.sh points GCE_METADATA_ROOT at the emulator too, so gcloud also lists the metadata server's account.
  for (const expected of ['alice@example.com', SA('caller'), SA('runtime')]) assert.ok(accounts.includes(expected), accounts.join(', '));
  assert.equal(await gcloud('config', 'get-value', 'account'), 'alice@example.com');
});

test('gcloud auth print-access-token and print-identity-token as the user, offline', { skip }, async () => {
  assert.match(await gcloud('auth', 'print-access-token'), /^ya29\./);
  const id = claims(await gcloud('auth', 'print-identity-token'));
  assert.equal(id.email, 'alice@example.com');
  assert.equal(id.aud, '32555940559.apps.googleusercontent.com', 'a user\'s ID token is for gcloud\'s client');
});

test('gcloud --impersonate-service-account, with and without --include-email: IAM takes gcloud\'s openid scopes', { skip }, async () => {
  const plain = claims(await gcloud('auth', 'print-identity-token', `--impersonate-service-account=${SA('invoker')}`, '--audiences=https://svc.example'));
  assert.equal(plain.aud, 'https://svc.example');
  assert.equal(plain.email, undefined, 'no email unless asked');
  const withEmail = claims(await gcloud('auth', 'print-identity-token', `--impersonate-service-account=${SA('invoker')}`, '--audiences=https://svc.example', '--include-email'));
  assert.equal(withEmail.email, SA('invoker'));
});

test('gcloud\'s impersonated token is accepted by the emulated service, and idcall --source gcloud agrees', { skip }, async () => {
  const hello = fx.emu.serviceRunUrls.hello![0]!;
  const token = await gcloud('auth', 'print-identity-token', `--impersonate-service-account=${SA('invoker')}`, `--audiences=${hello}`, '--include-email');
  const answer = await fetch(`${fx.emu.urls.services.hello}/`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(answer.status, 200);
  const inspected = json(await idcall(['inspect', token, '--audience', hello, '--json'], cleanEnv(fx.dir.path, { IDCALL_CERTS_URL: fx.emu.urls.jwks })));
  assert.equal(inspected.verdict.code, 'OK');
});

test('idcall --source gcloud where gcloud uses the metadata server (no account): a service account, --audiences honoured', { skip }, async () => {
  const { mkdtemp } = await import('node:fs/promises');
  const config = await mkdtemp(`${fx.dir.path}/gcloud-vm-`);
  const env = { ...gcloudEnv(), CLOUDSDK_CONFIG: config, IDCALL_CERTS_URL: fx.emu.urls.jwks };
  const result = await idcall(['token', '--source', 'gcloud', '--audience', 'https://svc.example', '--json'], env, {}, { tokenAllowedOn: 'stdout' });
  const report = json(result);
  assert.equal(report.verdict.code, 'OK', report.verdict.summary);
  assert.equal(report.claims.aud, 'https://svc.example');
  assert.equal(report.source.principal, SA('runtime'), 'the VM\'s service account, not a user');
});

test('idcall --source gcloud honours auth/impersonate_service_account from gcloud\'s configuration', { skip }, async () => {
  await gcloud('config', 'set', 'auth/impersonate_service_account', SA('invoker'));
  try {
    const result = await idcall(['token', '--source', 'gcloud', '--audience', 'https://svc.example', '--json'], { ...gcloudEnv(), IDCALL_CERTS_URL: fx.emu.urls.jwks }, {}, { tokenAllowedOn: 'stdout' });
    const report = json(result);
    assert.equal(report.verdict.code, 'OK', report.verdict.summary);
    assert.equal(report.claims.aud, 'https://svc.example');
    assert.equal(report.claims.email, SA('invoker'), 'minted as the configured service account');
  } finally {
    await gcloud('config', 'unset', 'auth/impersonate_service_account');
  }
});
