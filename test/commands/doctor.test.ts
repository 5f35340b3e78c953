// `idcall doctor`: the credential picture, bounded, with a fix on every problem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, cp } from 'node:fs/promises';
import { defaultScenario, startEmulator } from '../../src/emulator/index.ts';
import { assertNoSecrets, blackhole, cleanEnv, idcall, json, tempDir, emulatorFixture } from '../helpers/cli.ts';

let hole: Awaited<ReturnType<typeof blackhole>>;
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;

const fx = emulatorFixture();
before(async () => {
  hole = await blackhole();
});
after(async () => {
  await hole.close();
});

const env = (extra: Record<string, string | undefined> = {}) => cleanEnv(fx.dir.path, { GCE_METADATA_HOST: hole.host, IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });
const checkOf = (report: any, id: string) => report.checks.find((c: any) => c.id === id);

test('doctor with nothing configured and the metadata address blackholed: bounded by the 1 s metadata check, exit 3, says what to do', async () => {
  const home = await tempDir();
  try {
    const result = await idcall(['doctor'], cleanEnv(home.path, { GCE_METADATA_HOST: hole.host }));
    // A blackhole never answers: finishing at all proves the bound; 4 s leaves room for a loaded machine.
    assert.ok(result.ms < 4000, `took ${Math.round(result.ms)} ms`);
    assert.equal(result.code, 3);
    assert.match(result.stdout, /NO_CREDENTIALS/);
    assert.match(result.stdout, /gcloud auth application-default login/);
    const report = json(await idcall(['doctor', '--json'], cleanEnv(home.path, { GCE_METADATA_HOST: hole.host })));
    assert.equal(report.ok, false);
    assert.equal(report.exitCode, 3);
  } finally {
    await home.remove();
  }
});

const working: { name: string; env: () => Record<string, string | undefined>; type: string; checks: string[] }[] = [
  { name: 'service-account key', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), type: 'service_account', checks: ['credential', 'access-token', 'clock'] },
  { name: 'metadata server', env: () => env({ GCE_METADATA_HOST: fx.emu.urls.metadataHost }), type: 'compute', checks: ['access-token'] },
  { name: 'user (gcloud well-known file)', env: () => env({ CLOUDSDK_CONFIG: fx.creds.files.gcloudConfig }), type: 'authorized_user', checks: ['gcloud', 'access-token'] },
  { name: 'impersonation file', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.impersonated }), type: 'impersonated_service_account', checks: ['impersonation', 'access-token', 'id-token'] },
  { name: 'federation', env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }), type: 'external_account', checks: ['federation', 'access-token', 'id-token'] },
];
for (const w of working) {
  test(`doctor with ${w.name}: credentials work`, async () => {
    const result = await idcall(['doctor', '--json'], w.env());
    const report = json(result);
    assert.equal(report.verdict.code, 'OK', JSON.stringify(report.checks.filter((c: any) => c.status === 'fail')));
    assert.equal(result.code, 0);
    assert.equal(report.source.type, w.type);
    for (const id of w.checks) assert.equal(checkOf(report, id)?.status, 'ok', `${id}: ${JSON.stringify(checkOf(report, id))}`);
    assert.ok(checkOf(report, 'access-token').durationMs >= 0);
    const human = await idcall(['doctor'], w.env());
    assertNoSecrets([result.stdout, human.stdout, human.stderr], fx.emu.secrets());
  });
}

test('doctor --audience mints an ID token too, with its time', async () => {
  const report = json(await idcall(['doctor', '--audience', 'https://svc.example', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })));
  assert.equal(checkOf(report, 'id-token').status, 'ok');
  assert.match(checkOf(report, 'id-token').summary, /ID token for https:\/\/svc\.example/);
});

test('doctor: impersonation not allowed → the exact grant, exit 3', async () => {
  const result = await idcall(['doctor', '--impersonate-service-account', SA('no-access'), '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }));
  const report = json(result);
  assert.equal(result.code, 3);
  assert.equal(report.verdict.code, 'IMPERSONATION_DENIED');
  assert.match(report.verdict.fix, /add-iam-policy-binding no-access@demo-project\.iam\.gserviceaccount\.com --member=user:alice@example\.com --role=roles\/iam\.serviceAccountTokenCreator/);
  assert.match(checkOf(report, 'impersonation').summary, /no-access@/);
});

test('doctor: federation details, and a subject-token file that is gone', async () => {
  const ok = json(await idcall(['doctor', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount })));
  const details = checkOf(ok, 'federation').details.join('\n');
  assert.match(details, /workloadIdentityPools\/ci-pool\/providers\/ci-provider/);
  assert.match(details, /subject token from file/);
  assert.match(details, /impersonates invoker@/);
  const config = JSON.parse(await readFile(fx.creds.files.externalAccount!, 'utf8'));
  config.credential_source.file = `${fx.dir.path}/missing.jwt`;
  const broken = json(await idcall(['doctor', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await fx.dir.file('fed-missing.json', config) })));
  assert.equal(checkOf(broken, 'federation').status, 'fail');
  assert.match(checkOf(broken, 'federation').summary, /does not exist/);
  assert.equal(broken.exitCode, 3);
});

test('doctor: environment that breaks auth silently', async () => {
  const base = { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount };
  const proxied = json(await idcall(['doctor', '--json'], env({ ...base, HTTPS_PROXY: 'http://user:secret@proxy.corp:3128' })));
  assert.equal(checkOf(proxied, 'proxy').status, 'warn');
  assert.match(checkOf(proxied, 'proxy').fix, /NO_PROXY=169\.254\.169\.254/);
  assert.ok(!JSON.stringify(proxied).includes('secret@'), 'proxy credentials are not echoed');
  const exempt = json(await idcall(['doctor', '--json'], env({ ...base, HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: '169.254.169.254,metadata.google.internal' })));
  assert.equal(checkOf(exempt, 'proxy').status, 'ok');
  const nowhere = json(await idcall(['doctor', '--json'], env(base)));
  assert.equal(checkOf(nowhere, 'metadata-host').status, 'warn', 'GCE_METADATA_HOST points at a blackhole');
});

test('doctor: a clock off from Google\'s, measured from the Date header', async () => {
  const skewed = await startEmulator({ ...defaultScenario(), switches: { clockOffsetSeconds: 120 } });
  try {
    const key = await fx.dir.file('skew.json', skewed.serviceAccountKey(SA('caller')));
    const report = json(await idcall(['doctor', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: key })));
    assert.equal(checkOf(report, 'clock').status, 'warn');
    assert.match(checkOf(report, 'clock').summary, /behind Google's/);
  } finally {
    await skewed.close();
  }
});

test('doctor: gcloud auth login without application-default login', async () => {
  const config = `${fx.dir.path}/gcloud-cli-only`;
  await mkdir(`${config}/configurations`, { recursive: true });
  await writeFile(`${config}/active_config`, 'work');
  await writeFile(`${config}/configurations/config_work`, '[core]\naccount = carol@example.com\nproject = p1\n');
  const report = json(await idcall(['doctor', '--json'], env({ CLOUDSDK_CONFIG: config, GCE_METADATA_HOST: undefined, METADATA_SERVER_DETECTION: 'none' })));
  assert.equal(checkOf(report, 'gcloud').status, 'warn');
  assert.match(checkOf(report, 'gcloud').summary, /carol@example\.com.*no application-default login/);
  assert.match(checkOf(report, 'gcloud').fix, /gcloud auth application-default login/);
});

test('doctor: gcloud CLI account differs from the ADC account', async () => {
  const config = `${fx.dir.path}/gcloud-mixed`;
  await cp(fx.creds.files.gcloudConfig!, config, { recursive: true });
  await writeFile(`${config}/configurations/config_default`, '[core]\naccount = bob@example.com\n');
  const report = json(await idcall(['doctor', '--audience', 'https://svc.example', '--json'], env({ CLOUDSDK_CONFIG: config })));
  assert.equal(checkOf(report, 'gcloud-vs-adc')?.status, 'warn');
  assert.match(checkOf(report, 'gcloud-vs-adc').summary, /bob@example\.com.*alice@example\.com/);
});

test('doctor: a key file readable by others', async () => {
  const key = await fx.dir.file('open-key.json', await readFile(fx.creds.files.serviceAccount!, 'utf8'), 0o644);
  const report = json(await idcall(['doctor', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: key })));
  assert.equal(checkOf(report, 'credential').status, 'warn');
  assert.match(checkOf(report, 'credential').fix, /chmod 600/);
});

test('doctor: the gcloud CLI session, read from access_tokens.db', async () => {
  const { DatabaseSync } = await import('node:sqlite');
  const config = `${fx.dir.path}/gcloud-session`;
  await mkdir(`${config}/configurations`, { recursive: true });
  await writeFile(`${config}/active_config`, 'default');
  await writeFile(`${config}/configurations/config_default`, '[core]\naccount = dana@example.com\n');
  const db = new DatabaseSync(`${config}/access_tokens.db`);
  db.exec('CREATE TABLE access_tokens (account_id TEXT PRIMARY KEY, access_token TEXT, token_expiry TIMESTAMP, rapt_token TEXT, id_token TEXT)');
  const past = new Date(Date.now() - 3 * 3600_000).toISOString().replace('T', ' ').replace('Z', '000');
  db.prepare('INSERT INTO access_tokens VALUES (?, ?, ?, NULL, NULL)').run('dana@example.com', 'ya29.cached', past);
  db.close();
  const report = json(await idcall(['doctor', '--json'], env({ CLOUDSDK_CONFIG: config, GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })));
  const session = checkOf(report, 'gcloud-session');
  assert.equal(session.status, 'warn');
  assert.match(session.summary, /dana@example\.com: cached access token expired 3 h ago/);
  assert.ok(!JSON.stringify(report).includes('ya29.cached'), 'the cached token itself is never shown');
});
