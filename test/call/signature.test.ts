// `call` when the target rejects a token whose signature the verify step found bad: SIGNATURE_INVALID, not a
// guess about audiences. A token minted by another emulator's metadata server is signed by a key this one never had.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { cleanEnv, idcall, json, tempDir } from '../helpers/cli.ts';

let target: Emulator;
let stranger: Emulator;
let dir: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  [target, stranger] = await Promise.all([startEmulator(), startEmulator()]);
  dir = await tempDir();
});
after(async () => {
  await Promise.all([target.close(), stranger.close()]);
  await dir.remove();
});

test('a 401 after a verify step that found a bad signature is SIGNATURE_INVALID (exit 4)', async () => {
  const env = cleanEnv(dir.path, { GCE_METADATA_HOST: stranger.urls.metadataHost, IDCALL_CERTS_URL: target.urls.jwks });
  const url = `${target.urls.services.hello}/`;
  const report = json(await idcall(['call', url, '--json'], env));
  assert.equal(report.steps.find((s: { id: string }) => s.id === 'verify').status, 'fail');
  assert.deepEqual([report.verdict.code, report.exitCode], ['SIGNATURE_INVALID', 4]);
  const human = await idcall(['call', url], env);
  assert.equal(human.code, 4);
  assert.match(human.stdout, /SIGNATURE_INVALID .*answered 401: the token's signature: kid .* is not among Google's current keys/);
});
