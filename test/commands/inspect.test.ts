// `idcall inspect`: what a token is and whether a target would take it; garbage gets one line and exit 2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { defaultScenario, startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { run } from '../../src/cli/main.ts';
import { closedPort, idcall, json } from '../helpers/cli.ts';

let emu: Emulator;
let stale: Emulator;
let fresh: string;
let expired: string;
let userToken: string;
let accessToken: string;

const md = (e: Emulator, path: string) => fetch(`${e.urls.metadata}/computeMetadata/v1/${path}`, { headers: { 'Metadata-Flavor': 'Google' } });

before(async () => {
  emu = await startEmulator();
  // Google's clock two hours behind: what it issues has already expired by ours.
  stale = await startEmulator({ ...defaultScenario(), switches: { clockOffsetSeconds: -7200 } });
  fresh = await (await md(emu, 'instance/service-accounts/default/identity?audience=https://svc.example')).text();
  expired = await (await md(stale, 'instance/service-accounts/default/identity?audience=https://svc.example')).text();
  accessToken = ((await (await md(emu, 'instance/service-accounts/default/token')).json()) as { access_token: string }).access_token;
  const u = emu.userCredentials('alice@example.com');
  const res = await fetch(emu.urls.token, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', client_id: u.client_id!, client_secret: u.client_secret!, refresh_token: u.refresh_token! }) });
  userToken = ((await res.json()) as { id_token: string }).id_token;
});
after(async () => {
  await emu.close();
  await stale.close();
});

const env = () => ({ HOME: '/nonexistent', IDCALL_CERTS_URL: emu.urls.jwks });

/** An unsigned token with the given claims: the point is what inspect makes of the claims, not the signature. */
const forged = (claims: object) => `${Buffer.from('{"alg":"RS256","kid":"x"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

const cases: { name: string; token: () => string; audience?: string; exit: number; code: string; text?: RegExp }[] = [
  { name: 'a fresh token for its audience', token: () => fresh, audience: 'https://svc.example', exit: 0, code: 'OK', text: /expires in (59|60) min/ },
  { name: '--audience exactly as given: a path is another audience (a function URL)', token: () => fresh, audience: 'https://svc.example/some/path', exit: 4, code: 'AUDIENCE_MISMATCH', text: /but the target expects https:\/\/svc\.example\/some\/path/ },
  { name: '--audience trimmed only', token: () => fresh, audience: '  https://svc.example  ', exit: 0, code: 'OK' },
  { name: 'without --audience: valid', token: () => fresh, exit: 0, code: 'OK' },
  { name: 'wrong audience', token: () => fresh, audience: 'https://other.example', exit: 4, code: 'AUDIENCE_MISMATCH', text: /aud is https:\/\/svc\.example, but the target expects https:\/\/other\.example/ },
  { name: 'expired', token: () => expired, exit: 4, code: 'TOKEN_EXPIRED', text: /expired 60 min ago/ },
  { name: 'an opaque access token', token: () => accessToken, audience: 'https://svc.example', exit: 4, code: 'AUDIENCE_MISMATCH', text: /access token/ },
  { name: 'tampered signature', token: () => fresh.slice(0, -8) + 'AAAAAAAA', audience: 'https://svc.example', exit: 4, code: 'SIGNATURE_INVALID', text: /signature does not match/ },
  { name: 'a token from another issuer\'s key (unknown kid)', token: () => forged({ iss: 'https://accounts.google.com', aud: 'https://svc.example', exp: 4_000_000_000 }), audience: 'https://svc.example', exit: 4, code: 'SIGNATURE_INVALID', text: /not among Google's current keys/ },
  { name: 'a user token (client-id audience)', token: () => userToken, audience: 'https://svc.example', exit: 4, code: 'USER_TOKEN_AUDIENCE', text: /OAuth client/ },
  { name: 'a whole Authorization header line', token: () => `Authorization: Bearer ${fresh}`, audience: 'https://svc.example', exit: 0, code: 'OK' },
];
for (const c of cases) {
  test(`inspect: ${c.name} → exit ${c.exit} ${c.code}`, async () => {
    const args = ['inspect', c.token(), ...(c.audience ? ['--audience', c.audience] : [])];
    const human = await idcall(args, env());
    const report = json(await idcall([...args, '--json'], env()));
    assert.equal(human.code, c.exit, human.stdout + human.stderr);
    assert.equal(report.verdict.code, c.code);
    assert.equal(report.exitCode, c.exit);
    if (c.text) assert.match(human.stdout, c.text);
    assert.ok(!human.stdout.includes(c.token().replace(/^Authorization: Bearer /, '')), 'the token itself is not echoed');
  });
}

test('inspect reads stdin with -', async () => {
  const stdin = new PassThrough();
  stdin.end(`Bearer ${fresh}\n`);
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c) => (out += c));
  const code = await run(['inspect', '-', '--audience', 'https://svc.example'], { stdout, stderr: new PassThrough(), stdin, env: env() });
  assert.equal(code, 0);
  assert.match(out, /Fit for https:\/\/svc\.example/);
});

test('inspect with certificates unreachable is never OK: SIGNATURE_UNVERIFIED, exit 5, saying the signature was NOT verified', async () => {
  for (const token of [fresh, fresh.slice(0, -8) + 'AAAAAAAA']) {
    const unreachable = { ...env(), IDCALL_CERTS_URL: `http://127.0.0.1:${await closedPort()}/certs` };
    const result = await idcall(['inspect', token, '--audience', 'https://svc.example'], unreachable);
    assert.equal(result.code, 5);
    assert.match(result.stdout, /SIGNATURE_UNVERIFIED/);
    assert.match(result.stdout, /signature was NOT verified \(certificates unreachable/);
    assert.doesNotMatch(result.stdout, /OK\s+Fit for/);
    const report = json(await idcall(['inspect', token, '--audience', 'https://svc.example', '--json'], unreachable));
    assert.deepEqual([report.ok, report.verdict.code, report.exitCode], [false, 'SIGNATURE_UNVERIFIED', 5]);
  }
  // A definite problem still wins over the unverified signature.
  const wrong = await idcall(['inspect', fresh, '--audience', 'https://other.example'], { ...env(), IDCALL_CERTS_URL: `http://127.0.0.1:${await closedPort()}/certs` });
  assert.equal(wrong.code, 4);
  assert.match(wrong.stdout, /AUDIENCE_MISMATCH/);
});

test('inspect --json: a finding has a code only when it is a warning or a failure', async () => {
  for (const audience of ['https://svc.example', 'https://other.example']) {
    const report = json(await idcall(['inspect', fresh, '--audience', audience, '--json'], env()));
    for (const f of report.findings as { status: string; code?: string }[]) {
      assert.equal(f.code !== undefined, f.status !== 'ok', JSON.stringify(f));
    }
  }
});

const garbage: [string, string][] = [
  ['not a JWT', 'hello'],
  ['bad base64', 'a$b.c$d.e'],
  ['bad JSON', `${Buffer.from('{nope').toString('base64url')}.e30.sig`],
  ['huge input', 'x'.repeat(200_000)],
  ['two words', 'one two'],
];
for (const [name, input] of garbage) {
  test(`inspect garbage (${name}) → one line, exit 2, no stack trace`, async () => {
    const result = await idcall(['inspect', input], env());
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^error \[USAGE_ERROR\]: .+\n  Fix: .+\n$/);
  });
}


const malformed: [string, object, RegExp][] = [
  ['exp of 1e20', { iss: 'https://accounts.google.com', aud: 'https://svc.example', exp: 1e20, iat: 1 }, /malformed claim: exp is 100000000000000000000, not a time/],
  ['exp of 1e308', { iss: 'https://accounts.google.com', aud: 'https://svc.example', exp: 1e308 }, /malformed claim: exp is 1e\+308, not a time/],
  ['iat of 1e20', { iss: 'https://accounts.google.com', aud: 'https://svc.example', exp: 4_000_000_000, iat: 1e20 }, /malformed claim: iat is 100000000000000000000, not a time/],
  ['a numeric aud', { iss: 'https://accounts.google.com', aud: 12345, exp: 4_000_000_000 }, /malformed claim: aud is 12345, not a string/],
  ['an aud of objects', { iss: 'https://accounts.google.com', aud: [{ a: 1 }], exp: 4_000_000_000 }, /malformed claim: aud is \[\{"a":1\}\], not a string/],
];
for (const [name, claims, text] of malformed) {
  test(`inspect: ${name} is a malformed-claim finding, not an unexpected error`, async () => {
    for (const audience of [[], ['--audience', 'https://svc.example']]) {
      const human = await idcall(['inspect', forged(claims), ...audience], env());
      assert.equal(human.code, 4, human.stdout + human.stderr);
      assert.match(human.stdout, text);
      assert.doesNotMatch(human.stdout + human.stderr, /unexpected error|Invalid time value/);
      const report = json(await idcall(['inspect', forged(claims), ...audience, '--json'], env()));
      assert.ok(report.findings.some((f: { status: string; text: string; malformed?: boolean }) => f.status === 'fail' && f.malformed === true && text.test(f.text)));
      // One readable sentence, and a fix that says what the token is, not "mint a fresh one" for a token Google never wrote.
      assert.match(report.verdict.summary, /^A target checking this token would reject it: malformed claim: /);
      assert.match(report.verdict.fix, /not minted by Google/);
    }
  });
}

test('inspect: a token\'s claims cannot forge output lines or reach the terminal as control sequences', async () => {
  const hostile = forged({ iss: 'https://accounts.google.com\u001b]0;pwned\u0007', aud: 'https://svc.example\n[ok] OK  Fit for everything.', exp: 4_000_000_000, email: 'a\u001b[2J@b\r[ok]', sub: '\u202egnp.exe' });
  for (const args of [[], ['--audience', 'https://svc.example']]) {
    const { stdout } = await idcall(['inspect', hostile, ...args], env());
    assert.doesNotMatch(stdout, /[\u001b\u0007\r\u202e]/, 'no raw control character');
    assert.ok(!stdout.split('\n').some((line) => /^\[ok\] OK/.test(line) || /^✔ OK/.test(line)), `no line of the token's making:\n${stdout}`);
    assert.match(stdout, /aud {6}https:\/\/svc\.example\\n\[ok\] OK {2}Fit for everything\./);
  }
});
