// Whole human outputs compared with golden files after scrubbing what varies (ports, times, temp paths, ids).
// Regenerate after an intended change: IDCALL_UPDATE_GOLDEN=1 node --test test/commands/golden.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { cleanEnv, emulatorFixture, idcall } from '../helpers/cli.ts';

const fx = emulatorFixture({ switches: { acceptAdcClientIdAudience: false } });
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;

function scrub(text: string): string {
  return text
    .split(fx.dir.path).join('$TMP')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/\b\d+ ?ms\b/g, 'N ms')
    .replace(/\b\d+ms\b/g, 'Nms')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, 'TIME')
    .replace(/\b\d{21}\b/g, 'UNIQUE_ID')
    .replace(/\b[0-9a-f]{32}\/\d+;o=1/g, 'TRACE/1;o=1')
    .replace(/key [0-9a-f]{8}…/g, 'key KID…')
    .replace(/(expires in) \d+ min/g, '$1 N min')
    .replace(/Response body \(\d+ bytes/g, 'Response body (N bytes')
    .replace(/of Google's \([+-]\d+ s\)/g, "of Google's (±N s)")
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g, 'JWT')
    .replace(/"(iat|exp|auth_time)": \d+/g, '"$1": N')
    .replace(/"expiresInSeconds": \d+/g, '"expiresInSeconds": N')
    .replace(/"durationMs": \d+/g, '"durationMs": N')
    .replace(/"kid": "[0-9a-f]+"/g, '"kid": "KID"')
    .replace(/\(\d+ s ago\)/g, '(N s ago)');
}

const keyEnv = () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount });
/** A fresh token of the key's caller for the hello service, as `idcall token` prints it. */
async function helloToken(): Promise<string> {
  const result = await idcall(['token', '--audience', fx.emu.serviceRunUrls.hello![0]!], cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none', ...keyEnv() }), {}, { tokenAllowedOn: 'stdout' });
  return result.stdout.trim();
}

const cases: [string, () => string[] | Promise<string[]>, () => Record<string, string | undefined>, ('stdout' | 'stderr')?][] = [
  ['call-ok', () => ['call', `${fx.emu.urls.services.hello}/api`], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })],
  ['call-ok-verbose', () => ['call', `${fx.emu.urls.services.hello}/api`, '--verbose'], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })],
  ['call-invoker-denied', () => ['call', `${fx.emu.urls.services.private}/`, '--audience', fx.emu.serviceRunUrls.private![0]!], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })],
  ['call-user-token', () => ['call', `${fx.emu.urls.services.hello}/`], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser })],
  ['call-impersonation-denied', () => ['call', `${fx.emu.urls.services.hello}/`, '--impersonate-service-account', SA('no-access')], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser })],
  ['call-no-credentials', () => ['call', `${fx.emu.urls.services.hello}/`], () => ({})],
  ['doctor-key', () => ['doctor'], () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount })],
  ['token-json', () => ['token', '--audience', fx.emu.serviceRunUrls.hello![0]!, '--json'], keyEnv, 'stdout'],
  ['inspect-json', async () => ['inspect', await helloToken(), '--audience', fx.emu.serviceRunUrls.hello![0]!, '--json'], keyEnv],
  ['inspect-wrong-audience-json', async () => ['inspect', await helloToken(), '--audience', fx.emu.serviceRunUrls.private![0]!, '--json'], keyEnv],
];

for (const [name, makeArgs, extra, tokenAllowedOn] of cases) {
  test(`golden: ${name}`, async () => {
    const env = cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra() });
    const args = await makeArgs();
    const result = await idcall(args, env, {}, tokenAllowedOn ? { tokenAllowedOn } : {});
    const actual = scrub(`$ idcall ${args.join(' ')}\n${result.stdout}${result.stderr ? `--- stderr\n${result.stderr}` : ''}--- exit ${result.code}\n`);
    const file = new URL(`../golden/${name}.golden`, import.meta.url);
    if (process.env.IDCALL_UPDATE_GOLDEN) await writeFile(file, actual);
    assert.equal(actual, await readFile(file, 'utf8'));
  });
}
