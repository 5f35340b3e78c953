// Every endpoint the tool talks to × every fault: the command ends within its bound, blames the right step,
// and gives the right cause code and exit status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startEmulator, type Emulator, type Fault, type WrittenCredentials } from '../../src/emulator/index.ts';
import { cleanEnv, closedPort, idcall, json, tempDir } from '../helpers/cli.ts';

const BOUND = 800; // --auth-timeout and --timeout for every case

let emu: Emulator;
let creds: WrittenCredentials;
let dir: Awaited<ReturnType<typeof tempDir>>;
let urlSourced: string;
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  emu = await startEmulator();
  dir = await tempDir();
  creds = await emu.writeCredentials(dir.path);
  const config = JSON.parse(await readFile(creds.files.externalAccount!, 'utf8'));
  config.credential_source = { url: emu.urls.externalToken, format: { type: 'json', subject_token_field_name: 'id_token' } };
  urlSourced = await dir.file('external-url.json', config);
});
after(async () => {
  process.off('unhandledRejection', onUnhandled);
  await emu.close();
  await dir.remove();
});

type Outcome = { step: string; code: string; exit: number } | { ok: true; warnStep?: string };
type Setup = () => Promise<{ env: Record<string, string | undefined>; url?: string }>;
const base = (extra: Record<string, string | undefined>) => cleanEnv(dir.path, { METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: emu.urls.jwks, IDCALL_IAM_URL: emu.urls.iam, ...extra });

interface Endpoint {
  name: string;
  fault: Fault['endpoint'];
  setup: Setup;
  /** The cause when the endpoint fails; certs and target have their own table. */
  failure: Outcome;
  refused: Setup;
}

const endpoints: Endpoint[] = [
  {
    name: 'metadata',
    fault: 'metadata',
    setup: async () => ({ env: base({ METADATA_SERVER_DETECTION: 'assume-present', GCE_METADATA_HOST: emu.urls.metadataHost }) }),
    failure: { step: 'mint', code: 'METADATA_ERROR', exit: 3 },
    refused: async () => ({ env: base({ METADATA_SERVER_DETECTION: 'assume-present', GCE_METADATA_HOST: `127.0.0.1:${await closedPort()}` }) }),
  },
  {
    name: 'token endpoint',
    fault: 'token',
    setup: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount }) }),
    failure: { step: 'mint', code: 'TOKEN_ENDPOINT_ERROR', exit: 3 },
    refused: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount, IDCALL_TOKEN_URL: `http://127.0.0.1:${await closedPort()}/token` }) }),
  },
  {
    name: 'IAM Credentials',
    fault: 'iam',
    setup: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.impersonated }) }),
    failure: { step: 'mint', code: 'TOKEN_ENDPOINT_ERROR', exit: 3 },
    refused: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.impersonated, IDCALL_IAM_URL: `http://127.0.0.1:${await closedPort()}` }) }),
  },
  {
    name: 'STS',
    fault: 'sts',
    setup: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.externalAccount }) }),
    failure: { step: 'mint', code: 'FEDERATION_FAILED', exit: 3 },
    refused: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.externalAccount, IDCALL_STS_URL: `http://127.0.0.1:${await closedPort()}/v1/token` }) }),
  },
  {
    name: 'subject-token URL',
    fault: 'subject',
    setup: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: urlSourced }) }),
    failure: { step: 'mint', code: 'FEDERATION_FAILED', exit: 3 },
    refused: async () => {
      const config = JSON.parse(await readFile(urlSourced, 'utf8'));
      config.credential_source.url = `http://127.0.0.1:${await closedPort()}/token`;
      return { env: base({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('external-refused.json', config) }) };
    },
  },
  {
    name: 'certificates',
    fault: 'certs',
    setup: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount }) }),
    // Unreachable certificates make verify ⚠, never ✖: the call still goes ahead.
    failure: { ok: true, warnStep: 'verify' },
    refused: async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount, IDCALL_CERTS_URL: `http://127.0.0.1:${await closedPort()}/certs` }) }),
  },
];

const FAULTS: Record<string, Omit<Fault, 'endpoint'>> = {
  hang: { kind: 'hang' },
  '5 s delay': { kind: 'delay', ms: 5000 },
  '500': { kind: 'status', status: 500 },
  '503': { kind: 'status', status: 503 },
  '429 with Retry-After': { kind: 'retry-after', retryAfter: 1 },
  'garbage body': { kind: 'garbage' },
  'captive portal (HTML, 200)': { kind: 'html200' },
  'truncated body': { kind: 'truncated' },
  'connection reset': { kind: 'reset' },
};

async function check(name: string, setup: Setup, faults: Fault[], expected: Outcome): Promise<void> {
  emu.setFaults(faults);
  try {
    const { env, url } = await setup();
    const result = await idcall(['call', url ?? `${emu.urls.services.hello}/`, '--auth-timeout', String(BOUND), '--timeout', String(BOUND), '--json'], env);
    const report = json(result);
    // Bounded, not fast: without --auth-timeout/--timeout the defaults (10 s, 30 s) would apply, so under 8 s proves
    // the bound held, with room for a loaded machine. Speed is the benches' job.
    assert.ok(result.ms < 8000, `${name}: took ${Math.round(result.ms)} ms`);
    if ('ok' in expected) {
      assert.equal(report.verdict.code, 'OK', `${name}: ${report.verdict.summary}`);
      if (expected.warnStep) assert.equal(report.steps.find((s: any) => s.id === expected.warnStep).status, 'warn');
    } else {
      assert.equal(report.verdict.code, expected.code, `${name}: ${report.verdict.summary}`);
      assert.equal(result.code, expected.exit);
      assert.equal(report.steps.find((s: any) => s.status === 'fail')?.id, expected.step, `${name}: blamed step`);
    }
    assert.ok(report.verdict.code === 'OK' || report.verdict.fix, 'a fix for every failure');
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
    // Checked per case, so it holds whatever order the cases run in and names the case that leaked one.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, [], `${name}: no unhandled promise rejection`);
  } finally {
    emu.setFaults([]);
  }
}

for (const endpoint of endpoints) {
  for (const [faultName, fault] of Object.entries(FAULTS)) {
    test(`fault matrix: ${endpoint.name} × ${faultName}`, () => check(`${endpoint.name} × ${faultName}`, endpoint.setup, [{ endpoint: endpoint.fault, ...fault }], endpoint.failure));
  }
  test(`fault matrix: ${endpoint.name} × connection refused`, () => check(`${endpoint.name} × refused`, endpoint.refused, [], endpoint.failure));
}

// The target itself: what the service answers is reported as such.
const target = async () => ({ env: base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount }) });
const targetCases: [string, Omit<Fault, 'endpoint'> | 'refused', Outcome][] = [
  ['hang', FAULTS.hang!, { step: 'call', code: 'TIMEOUT', exit: 5 }],
  ['5 s delay', FAULTS['5 s delay']!, { step: 'call', code: 'TIMEOUT', exit: 5 }],
  ['500', FAULTS['500']!, { step: 'call', code: 'TARGET_ERROR', exit: 1 }],
  ['503', FAULTS['503']!, { step: 'call', code: 'TARGET_ERROR', exit: 1 }],
  ['429 with Retry-After', FAULTS['429 with Retry-After']!, { step: 'call', code: 'TARGET_ERROR', exit: 1 }],
  ['garbage body (200)', FAULTS['garbage body']!, { ok: true }],
  ['captive portal (HTML, 200)', FAULTS['captive portal (HTML, 200)']!, { ok: true }],
  ['truncated body', FAULTS['truncated body']!, { step: 'call', code: 'TARGET_UNREACHABLE', exit: 5 }],
  ['connection reset', FAULTS['connection reset']!, { step: 'call', code: 'TARGET_UNREACHABLE', exit: 5 }],
  ['connection refused', 'refused', { step: 'call', code: 'TARGET_UNREACHABLE', exit: 5 }],
];
for (const [name, fault, outcome] of targetCases) {
  test(`fault matrix: target × ${name}`, async () => {
    if (fault === 'refused') {
      const port = await closedPort();
      return check(`target × ${name}`, async () => ({ ...(await target()), url: `http://127.0.0.1:${port}/` }), [], outcome);
    }
    return check(`target × ${name}`, target, [{ endpoint: 'service:hello', ...fault }], outcome);
  });
}

test('retries: a token endpoint that fails twice with 503 then recovers succeeds; a 400 is never retried', async () => {
  emu.setFaults([{ endpoint: 'token', kind: 'status', status: 503, times: 2 }]);
  try {
    const report = json(await idcall(['call', `${emu.urls.services.hello}/`, '--json', '--auth-timeout', '5000'], base({ GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount })));
    assert.equal(report.verdict.code, 'OK');
    assert.deepEqual(report.steps.find((s: any) => s.id === 'mint').requests.map((r: any) => r.status), [503, 503, 200]);
  } finally {
    emu.setFaults([]);
  }
  const revoked = await dir.file('bad-refresh.json', { ...emu.userCredentials('alice@example.com'), refresh_token: '1//0bogus' });
  const report = json(await idcall(['call', `${emu.urls.services.hello}/`, '--json'], base({ GOOGLE_APPLICATION_CREDENTIALS: revoked })));
  assert.equal(report.verdict.code, 'REFRESH_TOKEN_REJECTED');
  assert.equal(report.steps.find((s: any) => s.id === 'mint').requests.length, 1, '4xx is not retried');
});
