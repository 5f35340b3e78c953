// Secrets that reach output by the side door: query strings in URLs, a hostile endpoint echoing a percent-encoded
// refresh token, the proxy's error bodies, a parser's excerpt of a malformed key file, hostile files to read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { issuedSecrets } from '../../src/emulator/index.ts';
import { FileReadError, readBoundedFile } from '../../src/core/files.ts';
import { redact } from '../../src/core/redact.ts';
import { assertNoSecrets, cleanEnv, emulatorFixture, idcall } from '../helpers/cli.ts';
import { allLogs, sidecar, upstream } from '../helpers/proxy.ts';

const fx = emulatorFixture();
after(() => assertNoSecrets(allLogs.map((l) => JSON.stringify(l)), issuedSecrets()));
const env = (extra: Record<string, string | undefined> = {}) => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: fx.emu.urls.jwks, IDCALL_IAM_URL: fx.emu.urls.iam, ...extra });

test('secret-looking query parameters and URL userinfo are replaced in every output', () => {
  for (const [input, expected] of [
    ['https://svc.run.app/x?key=AIzaSyA1234567890&page=2', 'https://svc.run.app/x?key=***&page=2'],
    ['https://svc/x?a=1&API_KEY=abc&Token=t0k3n#frag', 'https://svc/x?a=1&API_KEY=***&Token=***#frag'],
    ['https://svc/cb?code=4/0AX4Xf&state=s', 'https://svc/cb?code=***&state=s'],
    ['https://s/?sig=zz&signature=yy&password=p&passwd=q&pwd=r&secret=s&credential=c&auth=a&access_token=x&id_token=y', 'https://s/?sig=***&signature=***&password=***&passwd=***&pwd=***&secret=***&credential=***&auth=***&access_token=***&id_token=***'],
    ['proxy http://user:hunter2@proxy.corp:3128 said no', 'proxy http://***@proxy.corp:3128 said no'],
    ['https://svc/?keyboard=qwerty', 'https://svc/?keyboard=qwerty'],
    // A value that also has a token's shape is one *** (it once came out as "access_token=*** ACCESS TOKEN]").
    ['https://evil/cb?access_token=ya29.a0AfH6SM&id_token=eyJhbGciOi.eyJzdWIi.c2ln&state=ok', 'https://evil/cb?access_token=***&id_token=***&state=ok'],
  ]) {
    assert.equal(redact(input!), expected);
  }
});

test('redaction: what is left of a token or key that a cut split is still redacted; a known secret cut at the end of an excerpt too', async () => {
  const { redactedExcerpt, registerSecret } = await import('../../src/core/redact.ts');
  assert.equal(redact('body: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM'), 'body: [REDACTED JWT]');
  assert.equal(redact('body: eyJhbGciOiJSUzI1NiJ9'), 'body: [REDACTED JWT]');
  assert.equal(redact('key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'), 'key: [REDACTED PRIVATE KEY]');
  registerSecret('opaque-api-secret-0123456789');
  assert.equal(redactedExcerpt(Buffer.from('the key is opaque-api-secr'), 200), 'the key is [REDACTED]');
  assert.equal(redactedExcerpt(Buffer.from('the key is opaque-api-secret-0123456789, again'), 14), 'the key is [RE');
});

test('call: a secret in the target URL or in a redirect Location never appears in the report, human or --json', async () => {
  const up = await upstream((req, res) => res.writeHead(302, { location: `https://elsewhere.example/next?token=LOCATIONSECRET99&ok=1` }).end());
  try {
    const url = `${up.url}/api?key=URLSECRET12345&page=2`;
    for (const args of [['call', url], ['call', url, '--json'], ['call', url, '--verbose']]) {
      const result = await idcall(args, env());
      const all = result.stdout + result.stderr;
      assert.ok(!all.includes('URLSECRET12345'), `${args.join(' ')}: ${all}`);
      assert.ok(!all.includes('LOCATIONSECRET99'), `${args.join(' ')}: ${all}`);
      if (args.includes('--json')) assert.match(JSON.parse(result.stdout).url, /key=\*\*\*&page=2/);
    }
  } finally {
    await up.close();
  }
});

test('call: a target that echoes the token in its body shows no part of it, even where the excerpt\'s cut would split it', async () => {
  // The cut at 200 bytes once left the header and half the payload of the token: a shape no pattern knew.
  const up = await upstream((req, res) => {
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    res.writeHead(401, { 'content-type': 'text/plain', 'x-echo': token }).end(`${'.'.repeat(20)} your token was ${token} (and again ${token})`);
  });
  try {
    for (const args of [['call', up.url], ['call', up.url, '--json'], ['call', up.url, '--verbose'], ['call', up.url, '--body', 'full'], ['call', up.url, '--body', '300']]) {
      const result = await idcall(args, env());
      const token = String(up.seen.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '');
      assert.ok(token.startsWith('eyJ'), 'the target got a token');
      const shown = result.stdout + result.stderr;
      const payload = token.split('.')[1]!;
      assert.ok(!shown.includes(payload.slice(0, 24)), `${args.join(' ')}: part of the token's payload is shown:\n${shown}`);
      assert.match(shown, /your token was \[REDACTED( JWT)?\]/, args.join(' '));
    }
  } finally {
    await up.close();
  }
});

/** A token endpoint that echoes the request form back in its error, as some misbehaving endpoints do. */
async function echoingTokenEndpoint() {
  return upstream((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request', error_description: `bad request: ${body}` })));
  });
}

test('a token endpoint echoing the percent-encoded refresh token: token, call and proxy never print it', async () => {
  const echo = await echoingTokenEndpoint();
  const userEnv = env({ GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.authorizedUser, IDCALL_TOKEN_URL: echo.url });
  const refresh = JSON.parse(await readFile(fx.creds.files.authorizedUser!, 'utf8')).refresh_token as string;
  const encoded = encodeURIComponent(refresh);
  try {
    for (const args of [['token'], ['token', '--json'], ['call', fx.emu.urls.services.hello!, '--verbose'], ['call', fx.emu.urls.services.hello!, '--json'], ['doctor'], ['token', '--debug']]) {
      const result = await idcall(args, userEnv);
      assert.ok(echo.seen.length > 0, 'the endpoint was asked');
      const all = result.stdout + result.stderr;
      assert.ok(!all.includes(encoded) && !all.includes(refresh), `${args.join(' ')} printed the refresh token: ${all}`);
    }
    const side = await sidecar(['--target', fx.emu.urls.services.hello!, '--listen', '127.0.0.1:0'], userEnv).catch(() => null);
    // The start-up mint fails (the sidecar says so and keeps listening): its line and every 502 body stay clean.
    if (side) {
      const res = await request(`${side.url}/`);
      const body = await res.body.text();
      assert.equal(res.statusCode, 502);
      assert.ok(!body.includes(encoded) && !body.includes(refresh), body);
      assert.ok(!side.printed().includes(encoded), side.printed());
      await side.stop();
    }
  } finally {
    await echo.close();
  }
});

test('--debug with a malformed credential file shows no excerpt of it', async () => {
  const file = join(fx.dir.path, 'malformed.json');
  await writeFile(file, '{"type": "service_account", "private_key": SECRETKEYMATERIAL0123456789, "client_email": "x"}', { mode: 0o600 });
  for (const args of [['call', 'http://127.0.0.1:9/', '--debug'], ['token', '--debug'], ['doctor', '--debug'], ['proxy', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--debug']]) {
    const result = await idcall(args, env({ GOOGLE_APPLICATION_CREDENTIALS: file }));
    assert.equal(result.code, 3);
    assert.match(result.stdout + result.stderr, /not valid JSON/);
    assert.ok(!(result.stdout + result.stderr).includes('SECRETKEY'), `${args[0]}: ${result.stdout}${result.stderr}`);
  }
});

test('the bounded reader: regular files only, capped, symlinks to devices and FIFOs refused, in well under a second', async () => {
  const dir = join(fx.dir.path, 'reader');
  await mkdir(dir, { recursive: true });
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await writeFile(join(dir, 'small'), 'hello');
  await writeFile(join(dir, 'big'), Buffer.alloc(2048, 0x20));
  await symlink('/dev/zero', join(dir, 'zero-link'));
  await symlink(fifo, join(dir, 'fifo-link'));
  assert.equal((await readBoundedFile(join(dir, 'small'), 1024)).bytes.toString(), 'hello');
  for (const [name, problem] of [
    ['fifo', 'not_regular'],
    ['fifo-link', 'not_regular'],
    ['zero-link', 'not_regular'],
    ['big', 'too_large'],
    ['missing', 'missing'],
    ['.', 'directory'],
  ] as const) {
    await assert.rejects(readBoundedFile(join(dir, name), 1024), (err: unknown) => err instanceof FileReadError && err.problem === problem, name);
  }
  await assert.rejects(readBoundedFile('/proc/self/status', 16), (err: unknown) => err instanceof FileReadError && err.problem === 'too_large', 'a file whose size lies (procfs) is still capped');
});

test('doctor with a FIFO or a device as gcloud config files ends at once with a warning, not a hang or 625 MB read', { timeout: 20_000 }, async () => {
  const config = join(fx.dir.path, 'gcloud-hostile');
  await mkdir(join(config, 'configurations'), { recursive: true });
  execFileSync('mkfifo', [join(config, 'active_config')]);
  await symlink('/dev/zero', join(config, 'configurations', 'config_default'));
  const result = await idcall(['doctor', '--json'], env({ CLOUDSDK_CONFIG: config }));
  const gcloud = JSON.parse(result.stdout).checks.find((c: { id: string }) => c.id === 'gcloud');
  assert.equal(gcloud.status, 'warn');
  assert.match(gcloud.summary, /active_config is not a regular file/);
  assert.match(JSON.stringify(gcloud.details), /config_default is not a regular file/);
});
