// `idcall emulator --write-credentials DIR` in a directory someone may have prepared: no symlink is followed,
// every file is 0600 and every directory 0700 whatever was there, and a directory others can write to is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { idcall, tempDir } from '../helpers/cli.ts';

let emu: Emulator;
let tmp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  emu = await startEmulator();
  tmp = await tempDir();
});
after(async () => {
  await emu.close();
  await tmp.remove();
});

const mode = async (path: string) => (await lstat(path)).mode & 0o7777;

test('symlinks planted in DIR are replaced, never followed; a file that was 0666 ends 0600', async () => {
  const dir = join(tmp.path, 'planted');
  const outside = join(tmp.path, 'outside');
  await mkdir(dir, { mode: 0o700 });
  await mkdir(outside, { mode: 0o700 });
  await writeFile(join(outside, 'victim'), 'precious');
  await symlink(join(outside, 'victim'), join(dir, 'service-account.json'));
  await symlink(join(outside, 'victim'), join(dir, 'env.sh'));
  await writeFile(join(dir, 'authorized-user.json'), '{}', { mode: 0o666 });
  await chmod(join(dir, 'authorized-user.json'), 0o666);
  const written = await emu.writeCredentials(dir);
  assert.equal(await readFile(join(outside, 'victim'), 'utf8'), 'precious', 'the file outside DIR is untouched');
  const gcloudFiles = (g: string) => [join(g, 'active_config'), join(g, 'configurations', 'config_default'), join(g, 'application_default_credentials.json'), join(g, 'credentials.db'), join(g, 'access_tokens.db')];
  const google = written.files.google!;
  for (const path of [...Object.values(written.files).filter((p) => p !== written.files.gcloudConfig && p !== google), join(dir, 'env.sh'), join(dir, 'google-env.sh'), ...gcloudFiles(join(dir, 'gcloud')), join(google, 'service-account.json'), ...gcloudFiles(join(google, 'gcloud'))]) {
    assert.ok((await lstat(path!)).isFile(), `${path} is a regular file`);
    assert.equal(await mode(path!), 0o600, `${path} is 0600`);
  }
  for (const path of [join(dir, 'gcloud'), join(dir, 'gcloud', 'configurations'), google, join(google, 'gcloud')]) assert.equal(await mode(path), 0o700, `${path} is 0700`);
});

test('a new DIR is created 0700', async () => {
  const dir = join(tmp.path, 'fresh', 'nested');
  await emu.writeCredentials(dir);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
});

test('a DIR writable by other users is refused (USAGE_ERROR, exit 2), and so is a symlinked gcloud/ inside it', async () => {
  const open = join(tmp.path, 'world-writable');
  await mkdir(open);
  await chmod(open, 0o777);
  const result = await idcall(['emulator', '--write-credentials', open], { HOME: tmp.path, PATH: process.env.PATH });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /USAGE_ERROR.*writable by other users/);
  await assert.rejects(lstat(join(open, 'service-account.json')), 'nothing was written');

  const linked = join(tmp.path, 'linked-gcloud');
  await mkdir(linked, { mode: 0o700 });
  await mkdir(join(tmp.path, 'elsewhere'), { mode: 0o700 });
  await symlink(join(tmp.path, 'elsewhere'), join(linked, 'gcloud'));
  await assert.rejects(emu.writeCredentials(linked), /symbolic link/);
});
