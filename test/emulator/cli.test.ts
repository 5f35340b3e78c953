// `idcall emulator --write-credentials DIR` as a user runs it: a process that prints its URLs and the env to
// export, writes working files, and stops cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { JWT, gaxios } from 'google-auth-library';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import { closedPort, idcall, json, tempDir } from '../helpers/cli.ts';

test('idcall emulator prints URLs and env, writes credential files that work, and exits 0 on SIGTERM', async () => {
  const dir = await tempDir();
  const proc = spawn(process.execPath, ['src/cli/entry.ts', 'emulator', '--write-credentials', dir.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (c) => {
        out += c;
        if (out.includes('Press Ctrl-C to stop.')) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const token = /token\s+(http:\/\/127\.0\.0\.1:\d+\/token)/.exec(out)?.[1];
    assert.ok(token, out);
    assert.match(out, /metadata server\s+http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /service hello\s+http:\/\/127\.0\.0\.1:\d+\s+\(also https:\/\/hello-123456789012\.us-central1\.run\.app\)/);
    for (const v of ['GOOGLE_APPLICATION_CREDENTIALS', 'GCE_METADATA_HOST', 'IDCALL_CERTS_URL', 'CLOUDSDK_AUTH_TOKEN_HOST']) assert.match(out, new RegExp(`export ${v}=`));
    const envFile = await readFile(`${dir.path}/env.sh`, 'utf8');
    assert.match(envFile, /^export GOOGLE_APPLICATION_CREDENTIALS=/m);
    const key = JSON.parse(await readFile(`${dir.path}/service-account.json`, 'utf8'));
    assert.equal(key.token_uri, token);
    const transporter = new gaxios.Gaxios({ fetchImplementation: toTokenEndpoint(token!) });
    const idToken = await new JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, transporter }).fetchIdToken('https://svc.example');
    assert.match(idToken, /^eyJ/);
    const exit = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    assert.equal(await exit, 0);
  } finally {
    proc.kill();
    await dir.remove();
  }
});

/** google-auth-library posts JWT grants to Google's own token URL whatever the key says: send them to the emulator. */
function toTokenEndpoint(tokenUrl: string): typeof fetch {
  return (input, init) => fetch(String(input instanceof Request ? input.url : input) === 'https://oauth2.googleapis.com/token' ? tokenUrl : input, init);
}

test('idcall emulator --port --metadata-port: both servers on the ports asked for', async () => {
  const [google, metadata] = [await closedPort(), await closedPort()];
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c) => (out += c));
  let stop!: () => void;
  const exit = run(['emulator', '--port', String(google), '--metadata-port', String(metadata)], { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: {} }, { until: new Promise<void>((r) => (stop = r)) });
  await new Promise<void>((resolve) => stdout.on('data', () => out.includes('Press Ctrl-C') && resolve()));
  stop();
  assert.equal(await exit, 0);
  assert.match(out, new RegExp(`token\\s+http://127\\.0\\.0\\.1:${google}/token`));
  assert.match(out, new RegExp(`metadata server\\s+http://127\\.0\\.0\\.1:${metadata}\\b`));
});

test('with only the emulator\'s env.sh, doctor and call show no warning caused by the emulator\'s own files', async () => {
  const dir = await tempDir();
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c) => (out += c));
  let stop!: () => void;
  const exit = run(['emulator', '--write-credentials', dir.path], { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: { HOME: dir.path } }, { until: new Promise<void>((r) => (stop = r)) });
  try {
    await new Promise<void>((resolve) => stdout.on('data', () => out.includes('Press Ctrl-C') && resolve()));
    // What `source env.sh` gives a shell, and nothing else of this machine's.
    const env: Record<string, string> = { HOME: dir.path, PATH: process.env.PATH ?? '' };
    for (const [, name, value] of (await readFile(`${dir.path}/env.sh`, 'utf8')).matchAll(/^export (\w+)=(.*)$/gm)) env[name!] = value!.replace(/^'(.*)'$/, '$1');
    const doctor = json(await idcall(['doctor', '--json'], env));
    assert.equal(doctor.verdict.code, 'OK');
    assert.deepEqual(doctor.checks.filter((c: any) => c.status !== 'ok' && c.status !== 'skipped').map((c: any) => [c.id, c.summary]), []);
    assert.ok(doctor.checks.some((c: any) => /present, not used/.test(c.summary)), 'the gcloud login below the key file is still shown');
    const call = json(await idcall(['call', `${env.EMULATOR_SERVICE_HELLO}/`, '--json'], env));
    assert.equal(call.verdict.code, 'OK');
    assert.deepEqual(call.steps.filter((s: any) => s.status !== 'ok').map((s: any) => [s.name, s.summary]), []);
  } finally {
    stop();
    await exit;
    await dir.remove();
  }
});
