// What a user keeps after the request was sent: -o checked before sending, -o - for pipes, bodies that cannot drive
// the terminal, Ctrl-C and SIGTERM that stop a call at once, and a closed stdout that ends it quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanEnv, emulatorFixture, idcall } from '../helpers/cli.ts';
import { upstream } from '../helpers/proxy.ts';
import { eventually } from '../helpers/raw.ts';

const fx = emulatorFixture();
const env = () => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks });

test('-o naming a directory or a path in a missing directory is a USAGE_ERROR before anything is sent', async () => {
  const up = await upstream((_req, res) => res.end('body'));
  try {
    const dir = join(fx.dir.path, 'out-dir');
    await mkdir(dir, { recursive: true });
    for (const [target, text] of [
      [dir, /is a directory/],
      [join(fx.dir.path, 'missing', 'dir', 'x'), /does not exist/],
    ] as const) {
      const result = await idcall(['call', `${up.url}/`, '-X', 'POST', '-d', 'x', '-o', target], env());
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, text);
    }
    assert.equal(up.seen.length, 0, 'the target was never called');
  } finally {
    await up.close();
  }
});

test('-o - writes the body to stdout and the report to stderr', async () => {
  const up = await upstream((_req, res) => res.end('just the body'));
  try {
    const result = await idcall(['call', `${up.url}/`, '-o', '-'], env());
    assert.equal(result.code, 0);
    assert.equal(result.stdout, 'just the body');
    assert.match(result.stderr, /OK .*answered 200/);
    assert.match(result.stderr, /written to stdout/);
  } finally {
    await up.close();
  }
});

test('a body with escape sequences, C1 controls or bidi overrides is shown escaped; a binary body is not shown', async () => {
  const bodies: Record<string, Buffer> = {
    '/ansi': Buffer.from('\u001b]0;pwned\u0007\u001b[31mred\rover\u009b2J\u202egnp.exe'),
    '/binary': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0xff]),
  };
  const up = await upstream((req, res) => res.end(bodies[req.url!]));
  try {
    const ansi = await idcall(['call', `${up.url}/ansi`], env());
    assert.doesNotMatch(ansi.stdout, /[\u001b\u0007\r\u009b\u202e]/, 'no raw control character reaches the terminal');
    assert.match(ansi.stdout, /\\x1b\]0;pwned\\x07\\x1b\[31mred\\x0dover\\x9b2J\\u202egnp\.exe/);
    const binary = await idcall(['call', `${up.url}/binary`], env());
    assert.match(binary.stdout, /Response body: binary, 7 bytes \(use -o FILE to save it\)/);
  } finally {
    await up.close();
  }
});

function spawnCall(args: string[]) {
  const child = spawn(process.execPath, ['src/cli/entry.ts', ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (c) => (stdout += c));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exit, stdout: () => stdout };
}

for (const [signal, status] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${signal} stops a call to a slow service at once: exit ${status}, nothing half-written`, { timeout: 30_000 }, async () => {
    const up = await upstream(() => {}); // never answers
    try {
      const run = spawnCall(['call', `${up.url}/slow`]);
      await eventually(() => up.seen.length === 1, 15_000, 'the request to reach the service');
      run.child.kill(signal);
      assert.equal(await run.exit, status);
      assert.equal(run.stdout(), '');
    } finally {
      await up.close();
    }
  });
}

test('a closed stdout (| head -c 10) ends the command quietly, without an EPIPE stack trace', { timeout: 30_000 }, async () => {
  const up = await upstream((_req, res) => res.end('x'.repeat(4 * 1024 * 1024)));
  try {
    const child = spawn('bash', ['-c', `"${process.execPath}" src/cli/entry.ts call ${up.url}/ --body full | head -c 10 > /dev/null`], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    await new Promise((r) => child.once('exit', r));
    assert.doesNotMatch(stderr, /EPIPE|Error|at /);
  } finally {
    await up.close();
  }
});

test('--timeout bounds connecting and the headers only: a stream that answers at once runs past it; --max-time bounds the whole', { timeout: 30_000 }, async () => {
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: one\n\n');
    setTimeout(() => res.end('data: two\n\n'), 800);
  });
  try {
    const streamed = await idcall(['call', `${up.url}/events`, '--timeout', '300ms', '--body', 'full'], env());
    assert.equal(streamed.code, 0, streamed.stdout);
    assert.match(streamed.stdout, /data: one[\s\S]*data: two/);
    const capped = await idcall(['call', `${up.url}/events`, '--max-time', '300', '--json'], env());
    assert.equal(capped.code, 5);
    assert.match(JSON.parse(capped.stdout).verdict.summary, /did not finish within --max-time 300 ms/);
    assert.equal((await idcall(['call', `${up.url}/events`, '--max-time', '1m', '--json'], env())).code, 0, 'durations take minutes');
  } finally {
    await up.close();
  }
});

test('-o streams the body to the file as it arrives (a 24 MB body, byte for byte), and the report says where it went', { timeout: 60_000 }, async () => {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const up = await upstream((_req, res) => {
    let sent = 0;
    const pump = () => {
      while (sent < 384) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  try {
    const file = join(fx.dir.path, 'download.bin');
    const result = await idcall(['call', `${up.url}/big`, '-o', file], env());
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, new RegExp(`Response body \\(${384 * 64 * 1024} bytes\\) written to`));
    const { stat: statFile, readFile: readBody } = await import('node:fs/promises');
    assert.equal((await statFile(file)).size, 384 * 64 * 1024);
    assert.ok((await readBody(file)).every((b) => b === 7));
  } finally {
    await up.close();
  }
});

test('a 2xx whose body -o cannot write (a full device) is OUTPUT_ERROR, exit 1, not OK with "written to"', { skip: process.platform === 'linux' ? false : '/dev/full is Linux-only' }, async () => {
  const result = await idcall(['call', `${fx.emu.urls.services.hello}/full`, '-o', '/dev/full'], env());
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /could NOT all be written to \/dev\/full \(ENOSPC\)/);
  assert.match(result.stdout, /OUTPUT_ERROR .*answered 200, but the response body could not all be written \(ENOSPC\)/);
  const machine = JSON.parse((await idcall(['call', `${fx.emu.urls.services.hello}/full`, '-o', '/dev/full', '--json'], env())).stdout);
  assert.equal(machine.verdict.code, 'OUTPUT_ERROR');
  assert.equal(machine.exitCode, 1);
  assert.equal(machine.response.status, 200, 'the report still says what the target answered');
});

test('stdout that cannot be written (idcall token > /dev/full) ends in exit 1 with one line on stderr, not exit 0 and an empty file', { skip: process.platform === 'linux' ? false : '/dev/full is Linux-only', timeout: 30_000 }, async () => {
  const { openSync, closeSync } = await import('node:fs');
  const full = openSync('/dev/full', 'w');
  try {
    const child = spawn(process.execPath, ['src/cli/entry.ts', 'token', '--audience', 'https://svc.example'], { env: { ...env(), IDCALL_TOKEN_URL: fx.emu.urls.token }, stdio: ['ignore', full, 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c) => (stderr += c));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /idcall: the output could not be written \(ENOSPC\)\./);
  } finally {
    closeSync(full);
  }
});
