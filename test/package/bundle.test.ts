// The published CLI is the esbuild bundle (google-auth-library and yargs inside, string-width swapped for
// src/render/text-width.ts): run it, not the sources, against the emulator for every kind of work it bundles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { assertNoSecrets, emulatorFixture } from '../helpers/cli.ts';
import { issuedSecrets } from '../../src/emulator/index.ts';

const exec = promisify(execFile);
const fx = emulatorFixture();
const built = existsSync('dist/bundle/entry.js');

async function bin(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/idcall.js', ...args], { env: { PATH: process.env.PATH!, HOME: fx.dir.path, IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cases: { name: string; args: () => string[]; env: () => Record<string, string | undefined>; code: number; expect: RegExp; tokenOnStdout?: boolean }[] = [
  { name: 'token with a service-account key (bundled google-auth-library)', args: () => ['token', '--audience', 'https://svc.example'], env: () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), code: 0, expect: /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/, tokenOnStdout: true },
  { name: 'token from the metadata server', args: () => ['token', '--audience', 'https://svc.example'], env: () => ({ GCE_METADATA_HOST: fx.emu.urls.metadataHost }), code: 0, expect: /^eyJ/, tokenOnStdout: true },
  { name: 'token through federation and impersonation', args: () => ['token', '--audience', 'https://svc.example'], env: () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.externalAccount }), code: 0, expect: /^eyJ/, tokenOnStdout: true },
  { name: 'call a private service (bundled undici)', args: () => ['call', `${fx.emu.urls.services.hello}/`, '--json'], env: () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount }), code: 0, expect: /"code": "OK"/ },
  { name: 'a rejected key gives its cause code and exit 3', args: () => ['token', '--audience', 'https://svc.example', '--json'], env: () => ({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, IDCALL_TOKEN_URL: `${fx.emu.urls.google}/nowhere` }), code: 3, expect: /"code": "TOKEN_ENDPOINT_ERROR"/ },
  { name: 'top-level help lists every command', args: () => ['--help'], env: () => ({}), code: 0, expect: /call <url>[\s\S]*doctor[\s\S]*token[\s\S]*inspect[\s\S]*proxy[\s\S]*emulator/ },
];

test('bundled CLI: help laid out with the lazy text width is exactly what yargs lays out with string-width', { skip: built ? false : 'dist/ not built (npm run build)' }, async () => {
  // dist/help.json is written from the sources (real string-width); three arguments bypass it, so yargs renders.
  const prepared = JSON.parse(readFileSync('dist/help.json', 'utf8')) as Record<string, string>;
  for (const command of ['token', 'call', 'proxy']) {
    const result = await bin([command, '--no-color', '--help'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, prepared[command]);
  }
});

for (const c of cases) {
  test(`bundled CLI: ${c.name}`, { skip: built ? false : 'dist/ not built (npm run build)' }, async () => {
    const result = await bin(c.args(), c.env());
    assert.equal(result.code, c.code, result.stderr);
    assert.match(result.stdout, c.expect);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assertNoSecrets([c.tokenOnStdout ? '' : result.stdout, result.stderr], issuedSecrets());
  });
}
