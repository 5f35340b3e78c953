// The secret canary itself: it must catch a leak, or every "no secret leaked" assertion is worthless.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { cleanEnv, idcall, tempDir } from '../helpers/cli.ts';

let emu: Emulator;
let dir: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  emu = await startEmulator();
  dir = await tempDir();
});
after(async () => {
  await emu.close();
  await dir.remove();
});

test('a raw token on stdout trips the canary unless the command exists to print it', async () => {
  const creds = await emu.writeCredentials(dir.path);
  const env = cleanEnv(dir.path, { GOOGLE_APPLICATION_CREDENTIALS: creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none' });
  await assert.rejects(idcall(['token', '--audience', 'https://svc.example'], env), /a secret .* leaked into output/);
  const allowed = await idcall(['token', '--audience', 'https://svc.example'], env, {}, { tokenAllowedOn: 'stdout' });
  assert.equal(allowed.code, 0);
});

test('the canary covers private keys and refresh tokens too', async () => {
  const key = emu.serviceAccountKey('caller@demo-project.iam.gserviceaccount.com');
  const user = emu.userCredentials('alice@example.com');
  const { assertNoSecrets } = await import('../helpers/cli.ts');
  const { issuedSecrets } = await import('../../src/emulator/index.ts');
  assert.throws(() => assertNoSecrets([`oops ${JSON.stringify(key)}`], issuedSecrets()), /leaked/);
  assert.throws(() => assertNoSecrets([`oops ${user.refresh_token}`], issuedSecrets()), /leaked/);
});
