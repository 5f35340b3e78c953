// The gcloud CLI, a client nobody here wrote, gets identity tokens from the emulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cleanEnv, idcall, json, emulatorFixture } from '../helpers/cli.ts';

const run = promisify(execFile);
const gcloudPresent = await run('gcloud', ['--version'], { timeout: 20_000 }).then(() => true, () => false);
const skip = gcloudPresent ? false : 'gcloud is not installed on this machine';

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const gcloudEnv = (config: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH!,
  HOME: fx.dir.path,
  CLOUDSDK_CONFIG: config,
  CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
  CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1',
  CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
  ...extra,
});

const fx = emulatorFixture();
test('gcloud auth print-identity-token with a service-account key (auth/token_host → emulator)', { skip }, async () => {
  const config = `${fx.dir.path}/gcloud-sa`;
  const env = gcloudEnv(config, { CLOUDSDK_AUTH_TOKEN_HOST: fx.emu.urls.token });
  await run('gcloud', ['auth', 'activate-service-account', `--key-file=${fx.creds.files.serviceAccount}`], { env, timeout: 30_000 });
  const { stdout } = await run('gcloud', ['auth', 'print-identity-token', '--audiences=https://svc.example'], { env, timeout: 30_000 });
  const c = claims(stdout.trim());
  assert.equal(c.aud, 'https://svc.example');
  assert.equal(c.email, 'caller@demo-project.iam.gserviceaccount.com');
  assert.ok(fx.emu.requests.some((r) => r.endpoint === 'token' && r.status === 200));
});

test('gcloud auth print-identity-token on the metadata server (GCE_METADATA_ROOT → emulator)', { skip }, async () => {
  const env = gcloudEnv(`${fx.dir.path}/gcloud-gce`, { GCE_METADATA_ROOT: fx.emu.urls.metadataHost });
  const { stdout } = await run('gcloud', ['auth', 'print-identity-token', '--audiences=https://svc.example'], { env, timeout: 30_000 });
  const c = claims(stdout.trim());
  assert.equal(c.aud, 'https://svc.example');
  // gcloud asks for --token-format=standard by default: on GCE such a token has no email (§14.2).
  assert.equal(c.email, undefined);
  const full = claims((await run('gcloud', ['auth', 'print-identity-token', '--audiences=https://svc.example', '--token-format=full'], { env, timeout: 30_000 })).stdout.trim());
  assert.equal(full.email, 'runtime@demo-project.iam.gserviceaccount.com');
  assert.equal(full.google.compute_engine.project_id, 'demo-project');
});

test('idcall call --source gcloud uses gcloud\'s own token and says it is not an ADC source', { skip }, async () => {
  const config = `${fx.dir.path}/gcloud-src`;
  const env = gcloudEnv(config, { CLOUDSDK_AUTH_TOKEN_HOST: fx.emu.urls.token });
  await run('gcloud', ['auth', 'activate-service-account', `--key-file=${fx.creds.files.serviceAccount}`], { env, timeout: 30_000 });
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/`, '--source', 'gcloud', '--json'], cleanEnv(fx.dir.path, { ...env, IDCALL_CERTS_URL: fx.emu.urls.jwks }));
  const report = json(result);
  assert.equal(report.verdict.code, 'OK', report.verdict.summary);
  assert.equal(report.source.origin, 'gcloud');
  assert.match(report.steps[0].summary, /not an ADC source/);
  assert.match(report.steps[2].summary, /gcloud auth print-identity-token --audiences=/);
});
