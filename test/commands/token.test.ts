// `idcall token`: one line on stdout when it works, nothing on stdout when it fails, for every source.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoSecrets, blackhole, cleanEnv, idcall, json, emulatorFixture } from '../helpers/cli.ts';

let hole: Awaited<ReturnType<typeof blackhole>>;
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

const fx = emulatorFixture();
before(async () => {
  hole = await blackhole();
});
after(async () => {
  await hole.close();
});

const env = (extra: Record<string, string | undefined>) => cleanEnv(fx.dir.path, { GCE_METADATA_HOST: hole.host, IDCALL_METADATA_TIMEOUT: '200', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });

const sources: { name: string; env: () => Record<string, string | undefined>; args?: string[]; email: string }[] = [
  { name: 'service-account key', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), email: SA('caller') },
  { name: 'metadata server', env: () => env({ GCE_METADATA_HOST: fx.emu.urls.metadataHost }), email: SA('runtime') },
  { name: 'impersonated_service_account file', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.impersonated }), email: SA('invoker') },
  { name: 'user + --impersonate-service-account', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), args: ['--impersonate-service-account', SA('invoker'), '--include-email'], email: SA('invoker') },
  { name: 'external_account', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }), email: SA('invoker') },
];

for (const s of sources) {
  test(`token --audience with ${s.name}: exactly one line, the token`, async () => {
    const result = await idcall(['token', '--audience', 'https://svc.example/some/path', '--include-email', ...(s.args ?? [])], s.env(), {}, { tokenAllowedOn: 'stdout' });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '', 'quiet when it works');
    const lines = result.stdout.split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[1], '');
    const c = claims(lines[0]!);
    assert.equal(c.aud, 'https://svc.example/some/path', '--audience is used exactly as given (issue 14: a function URL keeps its path)');
    assert.equal(c.email, s.email);
  });
}

test('token without --audience uses gcloud\'s client id, as gcloud does', async () => {
  const result = await idcall(['token'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), {}, { tokenAllowedOn: 'stdout' });
  assert.equal(claims(result.stdout.trim()).aud, '32555940559.apps.googleusercontent.com');
});

test('token --audience for a user account: nothing on stdout, the reason and the fix on stderr, exit 3', async () => {
  const result = await idcall(['token', '--audience', 'https://svc.example'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }));
  assert.equal(result.code, 3);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /USER_TOKEN_AUDIENCE/);
  assert.match(result.stderr, /--impersonate-service-account/);
  assertNoSecrets([result.stderr], fx.emu.secrets());
});

test('token for a user account without --audience prints the user\'s own token', async () => {
  const result = await idcall(['token'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), {}, { tokenAllowedOn: 'stdout' });
  assert.equal(result.code, 0);
  assert.equal(claims(result.stdout.trim()).email, 'alice@example.com');
});

test('token failure prints nothing on stdout (impersonation denied → exit 3)', async () => {
  const result = await idcall(['token', '--audience', 'https://svc.example', '--impersonate-service-account', SA('no-access')], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }));
  assert.equal(result.code, 3);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /IMPERSONATION_DENIED/);
  assert.match(result.stderr, /roles\/iam\.serviceAccountTokenCreator/);
});

test('token with no credentials: nothing on stdout, exit 3', async () => {
  const result = await idcall(['token', '--audience', 'https://svc.example'], env({}));
  assert.equal(result.code, 3);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /NO_CREDENTIALS/);
});

test('token --decode prints header and claims, --verbose shows the steps on stderr, --json holds the token only in its token field', async () => {
  const e = env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount });
  const decoded = JSON.parse((await idcall(['token', '--audience', 'https://svc.example', '--decode'], e)).stdout);
  assert.equal(decoded.claims.aud, 'https://svc.example');
  assert.equal(decoded.header.alg, 'RS256');
  const verbose = await idcall(['token', '--audience', 'https://svc.example', '--verbose'], e, {}, { tokenAllowedOn: 'stdout' });
  assert.match(verbose.stderr, /mint/);
  assert.equal(verbose.stdout.split('\n').length, 2);
  const report = await idcall(['token', '--audience', 'https://svc.example', '--json'], e, {}, { tokenAllowedOn: 'stdout' });
  assert.equal(json(report).verdict.code, 'OK');
  const { token, ...rest } = json(report);
  assert.match(token, /^eyJ/);
  assertNoSecrets([JSON.stringify(rest), verbose.stderr], fx.emu.secrets());
});

test('token --json: the token, its expiry, audience, source and claims on stdout; nothing on stderr', async () => {
  const e = env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount });
  const result = await idcall(['token', '--audience', 'https://svc.example', '--json'], e, {}, { tokenAllowedOn: 'stdout' });
  const doc = json(result);
  assert.equal(result.stderr, '');
  assert.deepEqual([doc.version, doc.command, doc.audience], [1, 'token', 'https://svc.example']);
  assert.match(doc.token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.equal(doc.claims.aud, 'https://svc.example');
  assert.equal(Date.parse(doc.expiresAt), doc.claims.exp * 1000);
  assert.equal(doc.source.type, 'service_account');
  const failed = json(await idcall(['token', '--audience', 'https://svc.example', '--json'], env({}), {}, { tokenAllowedOn: 'stdout' }));
  assert.deepEqual([failed.ok, failed.token, failed.verdict.code], [false, null, 'NO_CREDENTIALS']);
});
