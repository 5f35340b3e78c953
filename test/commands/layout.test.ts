// Tables fit the terminal: at 80 columns no email or path is cut with "…" (it wraps), at 40 nothing overflows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import { cleanEnv, emulatorFixture } from '../helpers/cli.ts';

const fx = emulatorFixture();

/** Run idcall as on a terminal `columns` wide. */
async function onTerminal(args: string[], columns: number): Promise<string> {
  const stdout = Object.assign(new PassThrough(), { isTTY: true, columns });
  let out = '';
  stdout.on('data', (c) => (out += c));
  const env = cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, NO_COLOR: '1' });
  await run([...args, '--no-color'], { stdout, stderr: Object.assign(new PassThrough(), { isTTY: true }), stdin: new PassThrough(), env });
  return out;
}

for (const columns of [80, 40]) {
  for (const [name, args] of [
    ['call', () => ['call', `${fx.emu.urls.services.hello}/api`]],
    ['doctor', () => ['doctor']],
  ] as const) {
    test(`${name} at ${columns} columns: every table line fits, nothing is cut with "…"`, async () => {
      const out = await onTerminal(args(), columns);
      const table = out.split('\n').filter((l) => /^[┌│├└]/.test(l));
      assert.ok(table.length > 3, out);
      for (const line of table) assert.ok([...line].length <= columns, `${[...line].length} > ${columns}: ${line}`);
      // Nothing cut: the key file's whole path is in the result column once its wrapped pieces are put together.
      const result = table.map((l) => l.split('│')[4] ?? '').join('').replace(/\s+/g, '');
      assert.ok(result.includes(fx.creds.files.serviceAccount!), `the path was cut:\n${out}`);
    });
  }
}
