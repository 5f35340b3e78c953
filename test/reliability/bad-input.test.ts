// The bad-input corpus (test/fixtures/bad-input/cases.json): every case ends with its one-line message,
// cause code and exit status, never a stack trace; the message names the file, flag or variable at fault.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey } from '../../src/emulator/keys.ts';
import { idcall, tempDir } from '../helpers/cli.ts';

interface Case {
  name: string;
  file?: unknown;
  special?: string;
  args: string[];
  env?: Record<string, string>;
  code: string;
  exit: number;
  message: string;
}
const { cases } = JSON.parse(await readFile(new URL('../fixtures/bad-input/cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

let dir: Awaited<ReturnType<typeof tempDir>>;
let bigFile: string;
const rsa = generateSigningKey('bad-input');
const placeholders: Record<string, string> = {
  $RSA_KEY_TRUNCATED: rsa.privateKeyPem.slice(0, 200),
  $RSA_KEY: rsa.privateKeyPem,
  $RSA_PUBLIC: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  $EC_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  $ED_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  $CERT: rsa.certificatePem,
};
const fill = (text: string) => Object.entries(placeholders).reduce((t, [k, v]) => t.split(k).join(v), text);
// In a JSON file the placeholders are filled in the values, so a PEM's newlines are escaped as they are in real key files.
const fillValues = (value: unknown): unknown =>
  typeof value === 'string' ? fill(value) : Array.isArray(value) ? value.map(fillValues) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillValues(v)])) : value;

before(async () => {
  dir = await tempDir();
  bigFile = join(dir.path, 'big.json');
  await writeFile(bigFile, Buffer.alloc(50 * 1024 * 1024, 0x20));
});
after(() => dir.remove());

test('the corpus has at least 100 cases', () => assert.ok(cases.length >= 100, `${cases.length} cases`));

let n = 0;
for (const c of cases) {
  const index = n++;
  test(`bad input: ${c.name} → ${c.code} (exit ${c.exit})`, async () => {
    const path = join(dir.path, `case-${index}.json`);
    let file = path;
    if (c.file !== undefined) await writeFile(path, typeof c.file === 'string' ? fill(c.file) : JSON.stringify(fillValues(c.file), null, 2));
    switch (c.special) {
      case 'directory':
        await mkdir(path);
        break;
      case 'fifo':
        execFileSync('mkfifo', [path]);
        break;
      case 'big':
        file = bigFile;
        break;
      case 'zero':
        file = '/dev/zero';
        break;
      case 'nonutf8':
        await writeFile(path, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]));
        break;
      case 'empty':
        await writeFile(path, '');
        break;
      case 'whitespace':
        await writeFile(path, ' \n\t\n');
        break;
    }
    const sub = (s: string) => s.split('$FILE').join(file);
    const env = { HOME: dir.path, PATH: process.env.PATH, ...Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, sub(v)])) };
    const args = c.args.map(sub);
    const message = new RegExp(sub(c.message).replace(file, file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    const machine = await idcall([...args, '--json'], env);
    const report = JSON.parse(machine.stdout);
    assert.equal(report.verdict.code, c.code, report.verdict.summary);
    assert.equal(machine.code, c.exit);
    assert.equal(report.exitCode, c.exit);
    assert.match(report.verdict.summary, message);
    assert.ok(!report.verdict.summary.includes('\n'), 'one line');
    assert.ok(report.verdict.fix, 'a fix');

    const human = await idcall(args, env);
    assert.equal(human.code, c.exit);
    assert.ok(!/\n\s+at [\w.<>]+ \(|node:internal/.test(human.stdout + human.stderr), 'no stack trace');
    assert.match(human.stdout + human.stderr, new RegExp(c.code));
  });
}
