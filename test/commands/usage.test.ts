// Usage mistakes a newcomer makes get one clear line with the way out; the conveniences curl users expect work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import { cleanEnv, emulatorFixture, idcall, tempDir } from '../helpers/cli.ts';
import { upstream } from '../helpers/proxy.ts';

const fx = emulatorFixture();
const env = () => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks });

test('a misspelt command or flag gets "did you mean"', async () => {
  for (const [args, hint] of [
    [['tokn', '--audience', 'https://x'], /Did you mean `idcall token`\?/],
    [['call', 'https://x.example', '--audence', 'https://y'], /Did you mean --audience\?/],
    [['doctr'], /Did you mean `idcall doctor`\?/],
  ] as const) {
    const result = await idcall([...args], env());
    assert.equal(result.code, 2);
    assert.match(result.stderr, hint);
  }
});

test('-h is help, for the program and each command', async () => {
  assert.match((await idcall(['-h'], env())).stdout, /idcall <command> \[options\]/);
  assert.match((await idcall(['call', '-h'], env())).stdout, /idcall call <url>/);
});

test('a port already in use is a USAGE_ERROR naming the flag that picks another (proxy --listen, emulator --port)', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as { port: number }).port;
  try {
    const proxy = await idcall(['proxy', '--target', fx.emu.urls.services.hello!, '--listen', `127.0.0.1:${port}`], env());
    assert.equal(proxy.code, 2);
    assert.match(proxy.stderr, /USAGE_ERROR.*already in use[\s\S]*--listen/);
    const emulator = await idcall(['emulator', '--port', String(port)], env());
    assert.equal(emulator.code, 2);
    assert.match(emulator.stderr, /USAGE_ERROR.*already in use[\s\S]*--port/);
  } finally {
    holder.close();
  }
});

test('a scenario file with an unknown key is a USAGE_ERROR naming the key and the file', async () => {
  const dir = await tempDir();
  try {
    const file = await dir.file('scenario.json', { servicez: [] });
    const result = await idcall(['emulator', '--scenario', file], env());
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown key "servicez"`));
  } finally {
    await dir.remove();
  }
});

test('--header-name is case-insensitive, -d @- reads stdin, --color forces colour into a pipe', async () => {
  const up = await upstream((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c)).on('end', () => res.end(JSON.stringify({ body, serverless: /^Bearer /.test(String(req.headers['x-serverless-authorization'])) })));
  });
  try {
    const stdin = new PassThrough();
    stdin.end('from stdin');
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c) => (out += c));
    const code = await run(['call', `${up.url}/`, '-d', '@-', '--header-name', 'x-serverless-authorization', '--body', 'full', '--color'], { stdout, stderr: new PassThrough(), stdin, env: env() });
    assert.equal(code, 0, out);
    assert.match(out, /\{"body":"from stdin","serverless":true\}/);
    assert.match(out, /\u001b\[/, '--color colours even when stdout is not a terminal');
  } finally {
    await up.close();
  }
});

test('idcall completion zsh prints a zsh script; completion --help shows help', async () => {
  assert.match((await idcall(['completion', 'zsh'], env())).stdout, /#compdef idcall/);
  assert.match((await idcall(['completion', 'bash'], env())).stdout, /complete -o bashdefault|complete -F/);
  assert.match((await idcall(['completion', '--help'], env())).stdout, /completion/);
});
