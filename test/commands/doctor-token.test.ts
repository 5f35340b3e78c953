// doctor never says OK where token fails: for every credential type, `doctor --audience URL` and
// `token --audience URL` reach the same verdict code and exit status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cleanEnv, emulatorFixture, idcall, json } from '../helpers/cli.ts';

const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const fx = emulatorFixture();
const env = (extra: Record<string, string | undefined>) => cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, IDCALL_STS_URL: fx.emu.urls.sts, ...extra });
const hasGcloud = spawnSync('gcloud', ['--version'], { timeout: 20_000 }).status === 0;

const cases: { name: string; env: () => Record<string, string | undefined>; args?: string[]; code: string }[] = [
  { name: 'service-account key', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), code: 'OK' },
  { name: 'user credentials (a user token cannot carry the audience)', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), code: 'USER_TOKEN_AUDIENCE' },
  { name: 'user + --impersonate-service-account', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), args: ['--impersonate-service-account', SA('invoker')], code: 'OK' },
  { name: 'user + impersonation that is denied', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), args: ['--impersonate-service-account', SA('no-access')], code: 'IMPERSONATION_DENIED' },
  { name: 'impersonated_service_account file', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.impersonated }), code: 'OK' },
  { name: 'external_account (federation)', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }), code: 'OK' },
  { name: 'metadata server', env: () => env({ GCE_METADATA_HOST: fx.emu.urls.metadataHost, METADATA_SERVER_DETECTION: undefined }), code: 'OK' },
  { name: 'GOOGLE_APPLICATION_CREDENTIALS naming a missing file', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: `${fx.dir.path}/missing.json` }), code: 'CREDENTIALS_FILE_ERROR' },
  { name: 'nothing configured', env: () => env({}), code: 'NO_CREDENTIALS' },
  ...(hasGcloud ? [{ name: '--source gcloud with no gcloud login', env: () => env({ CLOUDSDK_CONFIG: `${fx.dir.path}/empty-gcloud` }), args: ['--source', 'gcloud'], code: 'NO_CREDENTIALS' }] : []),
];

for (const c of cases) {
  test(`doctor --audience and token --audience agree: ${c.name} → ${c.code}`, { timeout: 60_000 }, async () => {
    const audience = ['--audience', fx.emu.urls.services.hello!];
    const doctor = json(await idcall(['doctor', ...audience, ...(c.args ?? []), '--json'], c.env()));
    const token = json(await idcall(['token', ...audience, ...(c.args ?? []), '--json'], c.env(), {}, { tokenAllowedOn: 'stdout' }));
    assert.equal(doctor.verdict.code, c.code, `doctor: ${doctor.verdict.summary}`);
    assert.equal(token.verdict.code, c.code, `token: ${token.verdict.summary}`);
    assert.equal(doctor.exitCode, token.exitCode);
  });
}

test('doctor: GOOGLE_APPLICATION_CREDENTIALS naming a missing file is a failed source, never "[ok] in use"', async () => {
  const result = await idcall(['doctor'], env({ GOOGLE_APPLICATION_CREDENTIALS: `${fx.dir.path}/missing.json` }));
  assert.equal(result.code, 3);
  assert.match(result.stdout, /\[fail\] adc:GOOGLE_APPLICATION_CREDENTIALS .*in use, but the file does not exist/);
});

test('doctor: CLOUDSDK_CONFIG naming a missing directory is a warning', async () => {
  const report = json(await idcall(['doctor', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, CLOUDSDK_CONFIG: `${fx.dir.path}/no-such-dir` })));
  const gcloud = report.checks.find((c: { id: string }) => c.id === 'gcloud');
  assert.equal(gcloud.status, 'warn');
  assert.match(gcloud.summary, /CLOUDSDK_CONFIG names .* which does not exist/);
});

test('doctor --source gcloud runs gcloud and reports its ERROR line', { skip: hasGcloud ? false : 'gcloud is not installed', timeout: 60_000 }, async () => {
  const result = await idcall(['doctor', '--source', 'gcloud'], env({ CLOUDSDK_CONFIG: `${fx.dir.path}/empty-gcloud-2` }));
  assert.equal(result.code, 3);
  assert.match(result.stdout, /NO_CREDENTIALS .*\(gcloud\.auth\.print-identity-token\) You do not currently have an active account selected/);
});
