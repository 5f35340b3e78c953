// `idcall emulator --json`: one line once ready, after the credential files exist, so a script can wait on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';

test('emulator --json --write-credentials: one JSON line with urls, env and files, all written before it', { timeout: 30_000 }, async () => {
  const dir = await tempDir();
  const child = spawn(process.execPath, ['src/cli/entry.ts', 'emulator', '--json', '--write-credentials', join(dir.path, 'emu')], { env: { PATH: process.env.PATH, HOME: dir.path }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const ready = JSON.parse(line);
    assert.deepEqual([ready.command, ready.ready], ['emulator', true]);
    assert.match(ready.urls.token, /^http:\/\/127\.0\.0\.1:\d+\/token$/);
    assert.equal(ready.env.GOOGLE_APPLICATION_CREDENTIALS, ready.files.serviceAccount);
    await access(join(dir.path, 'emu', 'env.sh'));
    await access(ready.files.serviceAccount);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await dir.remove();
  }
});
