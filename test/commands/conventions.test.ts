// What users of any good CLI expect: colour and symbols only on a terminal, NO_COLOR, progress on stderr,
// completion, --version, examples in --help, and IDCALL_* configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import { cleanEnv, idcall, json, emulatorFixture } from '../helpers/cli.ts';


const fx = emulatorFixture();
const env = (extra: Record<string, string | undefined> = {}) => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, ...extra });
const ANSI = /\u001b\[/;

async function onTerminal(args: string[], e: Record<string, string | undefined>) {
  const tty = () => Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  const stdout = tty();
  const stderr = tty();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await run(args, { stdout, stderr, stdin: new PassThrough(), env: e });
  return { code, stdout: out, stderr: err };
}

test('piped output is plain: no colour codes, words instead of symbols', async () => {
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/`, '--verbose'], env());
  assert.ok(!ANSI.test(result.stdout));
  assert.match(result.stdout, /^\[ok\] mint /m);
  assert.match(result.stdout, /^ {4}\[ok\] signature verified/m, 'verification findings are words too');
  assert.ok(!/[✔✖⚠]/.test(result.stdout), 'no symbols when piped');
});

test('on a terminal: symbols and colour; NO_COLOR and --no-color keep the symbols and drop the colour', async () => {
  const tty = await onTerminal(['call', `${fx.emu.urls.services.hello}/`, '--verbose'], env());
  assert.match(tty.stdout, /✔/);
  assert.match(tty.stdout, /✔\S* signature verified/, 'verification findings get the symbols too');
  assert.ok(ANSI.test(tty.stdout));
  for (const [args, e] of [[['--no-color'], env()], [[], env({ NO_COLOR: '1' })]] as const) {
    const plain = await onTerminal(['call', `${fx.emu.urls.services.hello}/`, ...args], e);
    assert.match(plain.stdout, /✔/);
    assert.ok(!ANSI.test(plain.stdout), `colour with ${JSON.stringify(args)}`);
  }
});

test('slow steps show progress on a terminal\'s stderr, never with --json', async () => {
  fx.emu.setFaults([{ endpoint: 'token', kind: 'delay', ms: 600 }]);
  try {
    const slow = await onTerminal(['call', `${fx.emu.urls.services.hello}/`], env());
    assert.match(slow.stderr, /minting an ID token…/);
    assert.ok(!slow.stdout.includes('minting'), 'progress stays off stdout');
    const quiet = await onTerminal(['call', `${fx.emu.urls.services.hello}/`, '--json'], env());
    assert.equal(quiet.stderr, '');
    assert.equal(JSON.parse(quiet.stdout).verdict.code, 'OK');
  } finally {
    fx.emu.setFaults([]);
  }
});

test('completion, --version, and examples in every command\'s --help', async () => {
  assert.match((await idcall(['completion'], {})).stdout, /idcall --get-yargs-completions/);
  // What the completion script asks: commands, then a command's own options.
  assert.match((await idcall(['--get-yargs-completions', 'to'], {})).stdout, /^token$/m);
  const options = await idcall(['--get-yargs-completions', 'token', '--au'], {});
  assert.equal(options.code, 0, options.stderr);
  assert.match(options.stdout, /^--audience$/m);
  assert.match((await idcall(['--version'], {})).stdout, /^\d+\.\d+\.\d+\n$/);
  for (const command of ['call', 'token', 'inspect', 'doctor', 'proxy', 'emulator']) {
    const help = await idcall([command, '--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:/, `${command} --help has examples`);
  }
});

test('configuration: flag, then IDCALL_* environment, then default', async () => {
  const fromEnv = json(await idcall(['call', `${fx.emu.urls.services.hello}/`, '--body', 'full'], env({ IDCALL_METHOD: 'POST', IDCALL_JSON: 'true' })));
  assert.equal(JSON.parse(fromEnv.response.bodyExcerpt).method, 'POST');
  const flagWins = json(await idcall(['call', `${fx.emu.urls.services.hello}/`, '--body', 'full', '--method', 'PUT', '--json'], env({ IDCALL_METHOD: 'POST' })));
  assert.equal(JSON.parse(flagWins.response.bodyExcerpt).method, 'PUT');
});
