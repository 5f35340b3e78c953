// Requests per mint, counted at the emulator: the minimum for each source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { cleanEnv, idcall, emulatorFixture } from '../helpers/cli.ts';

let urlSourced: string;
const fx = emulatorFixture(undefined, async ({ emu, creds, dir }) => {
  const config = JSON.parse(await readFile(creds.files.externalAccount!, 'utf8'));
  config.credential_source = { url: emu.urls.externalToken, format: { type: 'json', subject_token_field_name: 'id_token' } };
  urlSourced = await dir.file('external-url.json', config);
});

const env = (extra: Record<string, string | undefined>) => cleanEnv(fx.dir.path, { METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });
const cases: [string, () => Record<string, string | undefined>, string[], number][] = [
  ['metadata server', () => env({ METADATA_SERVER_DETECTION: 'assume-present', GCE_METADATA_HOST: fx.emu.urls.metadataHost }), [], 1],
  ['service-account key', () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), [], 1],
  ['user (no audience: the user\'s own token)', () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), ['--no-audience'], 1],
  ['impersonation file', () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.impersonated }), [], 2],
  ['--impersonate-service-account from a user', () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser }), ['--impersonate-service-account', 'invoker@demo-project.iam.gserviceaccount.com'], 2],
  // STS, then generateIdToken straight from the federated token: no generateAccessToken in between.
  ['federation, file subject token', () => env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }), [], 2],
  ['federation, URL subject token', () => env({ GOOGLE_APPLICATION_CREDENTIALS: urlSourced }), [], 3],
];

for (const [name, e, args, expected] of cases) {
  test(`round trips per mint: ${name} → ${expected}`, async () => {
    const before = fx.emu.requests.length;
    const audience = args.includes('--no-audience') ? [] : ['--audience', 'https://svc.example'];
    const result = await idcall(['token', ...audience, ...args.filter((a) => a !== '--no-audience')], e(), {}, { tokenAllowedOn: 'stdout' });
    assert.equal(result.code, 0, result.stderr);
    const minting = fx.emu.requests.slice(before).filter((r) => ['metadata', 'token', 'iam', 'sts', 'subject'].includes(r.endpoint));
    assert.equal(minting.length, expected, minting.map((r) => `${r.endpoint} ${r.path}`).join('\n'));
  });
}
