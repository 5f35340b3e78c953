// `idcall call` for every ADC source against the emulator: verdict, exit status, steps, and no leaked secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoSecrets, blackhole, cleanEnv, idcall, json, tempDir, emulatorFixture } from '../helpers/cli.ts';

let home: Awaited<ReturnType<typeof tempDir>>;
let hole: Awaited<ReturnType<typeof blackhole>>;

const fx = emulatorFixture();
before(async () => {
  home = await tempDir();
  hole = await blackhole();
});
after(async () => {
  await hole.close();
  await home.remove();
});

const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;
const env = (extra: Record<string, string | undefined> = {}) =>
  cleanEnv(home.path, { GCE_METADATA_HOST: hole.host, IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_METADATA_TIMEOUT: '300', ...extra });

interface Case {
  name: string;
  env: () => Record<string, string | undefined>;
  args?: () => string[];
  service?: string;
  code: string;
  exit: number;
  source?: { type: string; origin: string };
  principal?: string;
  steps?: Record<string, string>;
  fix?: RegExp;
}

const cases: Case[] = [
  {
    name: 'service-account key in GOOGLE_APPLICATION_CREDENTIALS → 200',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }),
    code: 'OK',
    exit: 0,
    source: { type: 'service_account', origin: 'GOOGLE_APPLICATION_CREDENTIALS' },
    principal: SA('caller'),
    steps: { discover: 'ok', load: 'ok', mint: 'ok', verify: 'ok', call: 'ok' },
  },
  {
    name: 'service-account key without run.invoker → 403 with the exact grant',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }),
    service: 'private',
    code: 'INVOKER_DENIED',
    exit: 4,
    fix: /gcloud run services add-iam-policy-binding private --region=us-central1 --member=serviceAccount:caller@demo-project\.iam\.gserviceaccount\.com --role=roles\/run\.invoker/,
    steps: { mint: 'ok', verify: 'ok', call: 'fail' },
  },
  {
    name: '--credentials flag wins over GOOGLE_APPLICATION_CREDENTIALS',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }),
    args: () => ['--credentials', fx.creds.files.serviceAccount!],
    code: 'OK',
    exit: 0,
    source: { type: 'service_account', origin: 'flag' },
  },
  {
    name: 'impersonated_service_account file (user → invoker) → 200',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.impersonated }),
    code: 'OK',
    exit: 0,
    source: { type: 'impersonated_service_account', origin: 'GOOGLE_APPLICATION_CREDENTIALS' },
    principal: SA('invoker'),
  },
  {
    name: '--impersonate-service-account with a user source → 200',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }),
    args: () => ['--impersonate-service-account', SA('invoker'), '--iam-url', fx.emu.urls.iam],
    code: 'OK',
    exit: 0,
    principal: SA('invoker'),
  },
  {
    name: '--impersonate-service-account without token creator → IMPERSONATION_DENIED naming caller, target and role',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }),
    args: () => ['--impersonate-service-account', SA('no-access'), '--iam-url', fx.emu.urls.iam],
    code: 'IMPERSONATION_DENIED',
    exit: 3,
    fix: /gcloud iam service-accounts add-iam-policy-binding no-access@demo-project\.iam\.gserviceaccount\.com --member=user:alice@example\.com --role=roles\/iam\.serviceAccountTokenCreator/,
    steps: { mint: 'fail', verify: 'skipped', call: 'skipped' },
  },
  {
    name: 'external_account (file subject token → STS → generateIdToken) → 200',
    env: () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }),
    code: 'OK',
    exit: 0,
    source: { type: 'external_account', origin: 'GOOGLE_APPLICATION_CREDENTIALS' },
    principal: SA('invoker'),
  },
  {
    name: 'gcloud well-known file (authorized_user) is found through CLOUDSDK_CONFIG',
    env: () => env({ CLOUDSDK_CONFIG: fx.creds.files.gcloudConfig }),
    service: 'private',
    code: 'INVOKER_DENIED',
    exit: 4,
    source: { type: 'authorized_user', origin: 'well_known_file' },
    fix: /--member=user:alice@example\.com/,
  },
  {
    name: 'metadata server (GCE_METADATA_HOST) → 200',
    env: () => env({ GCE_METADATA_HOST: fx.emu.urls.metadataHost }),
    code: 'OK',
    exit: 0,
    source: { type: 'compute', origin: 'metadata_server' },
    principal: SA('runtime'),
  },
  {
    name: 'nothing configured, metadata blackholed → NO_CREDENTIALS within the bound',
    env: () => env(),
    code: 'NO_CREDENTIALS',
    exit: 3,
    steps: { discover: 'fail', load: 'skipped' },
    fix: /gcloud auth application-default login/,
  },
];

for (const c of cases) {
  test(`call: ${c.name}`, async () => {
    const url = `${fx.emu.urls.services[c.service ?? 'hello']}/api`;
    const audience = fx.emu.serviceRunUrls[c.service ?? 'hello']![0]!;
    const args = ['call', url, '--audience', audience, ...(c.args?.() ?? [])];
    const table = await idcall(args, c.env());
    const result = await idcall([...args, '--json'], c.env());
    const report = json(result);
    assert.equal(report.verdict.code, c.code, `${report.verdict.summary}\n${table.stdout}${table.stderr}`);
    assert.equal(result.code, c.exit);
    assert.equal(table.code, c.exit);
    assert.equal(report.exitCode, c.exit);
    assert.equal(report.ok, c.code === 'OK');
    if (c.source) assert.deepEqual({ type: report.source.type, origin: report.source.origin }, c.source);
    if (c.principal) assert.match(table.stdout, new RegExp(c.principal.replace(/[.]/g, '\\.')));
    for (const [id, status] of Object.entries(c.steps ?? {})) assert.equal(report.steps.find((s: any) => s.id === id).status, status, `step ${id}`);
    if (c.fix) assert.match(report.verdict.fix, c.fix);
    assert.deepEqual(report.steps.map((s: any) => s.id), ['discover', 'load', 'mint', 'verify', 'call']);
    assert.match(table.stdout, new RegExp(c.code));
    assert.ok(!/\n\s+at /.test(table.stderr + table.stdout), 'no stack trace');
    assertNoSecrets([table.stdout, table.stderr, result.stdout, result.stderr], fx.emu.secrets());
  });
}

test('call: NO_CREDENTIALS with a blackholed metadata server ends within the metadata bound', async () => {
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/`, '--metadata-timeout', '500'], env({ IDCALL_METADATA_TIMEOUT: undefined }));
  assert.equal(result.code, 3);
  // A blackhole never answers: finishing at all proves the bound; 4 s leaves room for a loaded machine.
  assert.ok(result.ms < 4000, `took ${Math.round(result.ms)} ms`);
});

test('call: shadowed sources are reported, not warned about (a key file hides the gcloud login)', async () => {
  const report = json(await idcall(['call', `${fx.emu.urls.services.hello}/`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, CLOUDSDK_CONFIG: fx.creds.files.gcloudConfig })));
  assert.equal(report.source.origin, 'GOOGLE_APPLICATION_CREDENTIALS');
  assert.deepEqual(report.shadowed.map((s: any) => [s.origin, s.type]), [['well_known_file', 'authorized_user']]);
  assert.equal(report.steps[0].status, 'ok');
  assert.match(report.steps[0].summary, /1 other source present, not used/);
});

test('call: X-Serverless-Authorization carries the token and the client Authorization header is kept', async () => {
  const e = env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount });
  const viaFlag = json(await idcall(['call', `${fx.emu.urls.services.hello}/`, '--header-name', 'X-Serverless-Authorization', '--body', 'full', '--json'], e));
  assert.equal(JSON.parse(viaFlag.response.bodyExcerpt).via, 'X-Serverless-Authorization');
  const kept = json(await idcall(['call', `${fx.emu.urls.services.hello}/`, '-H', 'Authorization: Basic YXBwOmFwcA==', '--body', 'full', '--json'], e));
  const echo = JSON.parse(kept.response.bodyExcerpt);
  assert.equal(echo.via, 'X-Serverless-Authorization');
  assert.equal(echo.applicationAuthorization, 'present');
});

test('call: --show-token prints the token on stderr only', async () => {
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/`, '--show-token'], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), {}, { tokenAllowedOn: 'stderr' });
  assert.equal(result.code, 0);
  assert.match(result.stderr, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.ok(!result.stdout.includes(result.stderr.trim()));
});

test('call: --output writes the whole body to a file and the report says so', async () => {
  const out = `${fx.dir.path}/body.json`;
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/`, '--output', out], env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }));
  assert.equal(result.code, 0);
  assert.match(result.stdout, /Response body \(\d+ bytes\) written to .*body\.json/);
  const { readFile } = await import('node:fs/promises');
  assert.equal(JSON.parse(await readFile(out, 'utf8')).service, 'hello');
});

test('call: a VM whose access scopes lack cloud-platform cannot impersonate: SCOPE_INSUFFICIENT (exit 3) with the instance fix', async () => {
  const { startEmulator, defaultScenario } = await import('../../src/emulator/index.ts');
  const scenario = defaultScenario();
  // Compute Engine's default access scopes: no cloud-platform.
  scenario.metadata.scopes = ['https://www.googleapis.com/auth/devstorage.read_only', 'https://www.googleapis.com/auth/logging.write'];
  const vm = await startEmulator(scenario);
  try {
    vm.grant({ kind: 'serviceAccount', name: 'invoker@demo-project.iam.gserviceaccount.com' }, 'roles/iam.serviceAccountTokenCreator', 'serviceAccount:runtime@demo-project.iam.gserviceaccount.com');
    const e = cleanEnv(fx.dir.path, { GCE_METADATA_HOST: vm.urls.metadataHost, IDCALL_IAM_URL: vm.urls.iam, IDCALL_CERTS_URL: vm.urls.jwks });
    const result = await idcall(['call', `${vm.urls.services.hello}/`, '--impersonate-service-account', 'invoker@demo-project.iam.gserviceaccount.com', '--json'], e);
    const report = json(result);
    assert.equal(report.verdict.code, 'SCOPE_INSUFFICIENT');
    assert.equal(result.code, 3);
    assert.match(report.verdict.fix, /gcloud compute instances set-service-account INSTANCE --zone=ZONE --service-account=runtime@demo-project\.iam\.gserviceaccount\.com --scopes=cloud-platform/);
    // gcloud's own default impersonation scopes (openid, userinfo.email, cloud-platform, …) are accepted (§15.2).
  } finally {
    await vm.close();
  }
});

const gkeCases: { name: string; gke: import('../../src/emulator/index.ts').Scenario['metadata']['gke']; code: string; exit: number; warn?: RegExp; fix?: RegExp }[] = [
  { name: 'a token answer without Metadata-Flavor is accepted, with a warning', gke: {}, code: 'OK', exit: 0, warn: /no Metadata-Flavor: Google header \(GKE's metadata server answers so\)/ },
  { name: 'format=full refused with 400: retried with format=standard, with a warning about email', gke: { formatFullRejected: true }, code: 'OK', exit: 0, warn: /refused format=full \(400\); asked again with format=standard/ },
  { name: 'no workloadIdentityUser binding: IAM\'s refusal, with the KSA binding', gke: { workloadIdentityUserMissing: true }, code: 'IMPERSONATION_DENIED', exit: 3, fix: /roles\/iam\.workloadIdentityUser --member="serviceAccount:PROJECT_ID\.svc\.id\.goog\[NAMESPACE\/KSA_NAME\]"/ },
];
for (const c of gkeCases) {
  test(`call on GKE's metadata server: ${c.name}`, async () => {
    const { startEmulator, defaultScenario } = await import('../../src/emulator/index.ts');
    const scenario = defaultScenario();
    scenario.metadata.gke = c.gke;
    const gke = await startEmulator(scenario);
    try {
      const result = await idcall(['call', `${gke.urls.services.hello}/`, '--json'], cleanEnv(fx.dir.path, { GCE_METADATA_HOST: gke.urls.metadataHost, IDCALL_CERTS_URL: gke.urls.jwks }));
      const report = json(result);
      assert.equal(report.verdict.code, c.code, report.verdict.summary);
      assert.equal(result.code, c.exit);
      if (c.warn) {
        const mint = report.steps.find((s: any) => s.id === 'mint');
        assert.equal(mint.status, 'warn');
        assert.match(mint.details.join('\n'), c.warn);
      }
      if (c.fix) assert.match(report.verdict.fix, c.fix);
    } finally {
      await gke.close();
    }
  });
}
