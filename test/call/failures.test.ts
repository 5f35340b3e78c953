// Each way a call can fail maps to one cause code, one exit status and a fix a person can paste.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { defaultScenario, startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { assertNoSecrets, blackhole, cleanEnv, closedPort, idcall, json, tempDir } from '../helpers/cli.ts';

let emu: Emulator;
let dir: Awaited<ReturnType<typeof tempDir>>;
let hole: Awaited<ReturnType<typeof blackhole>>;
const SA = (name: string) => `${name}@demo-project.iam.gserviceaccount.com`;

before(async () => {
  const scenario = defaultScenario();
  scenario.serviceAccounts[0]!.keys = [{}, { deleted: true }, { disabled: true }];
  scenario.users.push({ email: 'revoked@example.com', revoked: true }, { email: 'reauth@example.com', reauthRequired: true });
  // A strict target: user tokens whose audience is the ADC client id are not accepted.
  scenario.switches = { acceptAdcClientIdAudience: false };
  emu = await startEmulator(scenario);
  dir = await tempDir();
  hole = await blackhole();
});
after(async () => {
  await emu.close();
  await hole.close();
  await dir.remove();
});

const env = (extra: Record<string, string | undefined> = {}) =>
  cleanEnv(dir.path, { GCE_METADATA_HOST: hole.host, IDCALL_CERTS_URL: emu.urls.jwks, IDCALL_METADATA_TIMEOUT: '200', IDCALL_IAM_URL: emu.urls.iam, ...extra });
const keyFile = (index: number) => dir.file(`key-${index}.json`, emu.serviceAccountKey(SA('caller'), index));
const userFile = (email: string) => dir.file(`${email}.json`, emu.userCredentials(email));

interface Case {
  name: string;
  setup: () => Promise<{ env: Record<string, string | undefined>; url?: string; args?: string[] }>;
  code: string;
  exit: number;
  failedStep?: string;
  summary?: RegExp;
  fix?: RegExp;
}

const hello = () => `${emu.urls.services.hello}/api`;
const cases: Case[] = [
  { name: 'deleted key', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(1) }) }), code: 'KEY_REJECTED', exit: 3, failedStep: 'mint', summary: /Invalid JWT Signature/, fix: /keys create/ },
  { name: 'disabled key', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(2) }) }), code: 'KEY_REJECTED', exit: 3, failedStep: 'mint' },
  { name: 'revoked refresh token', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await userFile('revoked@example.com') }) }), code: 'REFRESH_TOKEN_REJECTED', exit: 3, failedStep: 'mint', fix: /gcloud auth application-default login/ },
  { name: 'reauthentication required', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await userFile('reauth@example.com') }) }), code: 'REAUTH_REQUIRED', exit: 3, failedStep: 'mint', fix: /gcloud auth application-default login/ },
  {
    name: "a user's own token at a target that checks its audience",
    setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await userFile('alice@example.com') }) }),
    code: 'USER_TOKEN_AUDIENCE',
    exit: 4,
    summary: /OAuth client/,
    fix: /--impersonate-service-account SA_EMAIL.*--member=user:alice@example\.com --role=roles\/iam\.serviceAccountTokenCreator/,
  },
  {
    name: 'wrong audience (a custom domain the service does not list)',
    setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) }), args: ['--audience', 'https://api.example.com'] }),
    code: 'AUDIENCE_MISMATCH',
    exit: 4,
    fix: /--add-custom-audiences/,
  },
  {
    name: 'federation without service-account impersonation',
    setup: async () => {
      const creds = await emu.writeCredentials(`${dir.path}/fed`);
      const config = JSON.parse(await (await import('node:fs/promises')).readFile(creds.files.externalAccount!, 'utf8'));
      delete config.service_account_impersonation_url;
      return { env: env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('fed-no-sa.json', config) }) };
    },
    code: 'FEDERATION_FAILED',
    exit: 3,
    summary: /federation alone cannot mint an ID token/,
    fix: /--service-account=SA_EMAIL|--impersonate-service-account/,
  },
  {
    name: 'federation with an unknown provider',
    setup: async () => {
      const creds = await emu.writeCredentials(`${dir.path}/fed2`);
      const config = JSON.parse(await (await import('node:fs/promises')).readFile(creds.files.externalAccount!, 'utf8'));
      config.audience = config.audience.replace('ci-provider', 'gone-provider');
      return { env: env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('fed-bad.json', config) }) };
    },
    code: 'FEDERATION_FAILED',
    exit: 3,
    summary: /invalid_target/,
  },
  { name: 'malformed credential file', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('bad.json', '{"type": "service_account",') }) }), code: 'CREDENTIALS_FILE_ERROR', exit: 3, failedStep: 'load', summary: /bad\.json.*not valid JSON/ },
  { name: 'missing field', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('nokey.json', { type: 'service_account', client_email: SA('caller') }) }) }), code: 'CREDENTIALS_FILE_ERROR', exit: 3, summary: /nokey\.json.*"private_key" is missing/ },
  { name: 'GOOGLE_APPLICATION_CREDENTIALS points nowhere', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: `${dir.path}/nope.json` }) }), code: 'CREDENTIALS_FILE_ERROR', exit: 3, summary: /nope\.json \(from GOOGLE_APPLICATION_CREDENTIALS\) does not exist/ },
  { name: 'a directory as credential file', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: dir.path }) }), code: 'CREDENTIALS_FILE_ERROR', exit: 3, summary: /is a directory/ },
  { name: 'unknown credential type', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file('odd.json', { type: 'magic' }) }) }), code: 'UNSUPPORTED_CREDENTIAL_TYPE', exit: 3 },
  { name: 'target refuses connections', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) }), url: `http://127.0.0.1:${await closedPort()}/`, args: ['--audience', 'http://x.example'] }), code: 'TARGET_UNREACHABLE', exit: 5, failedStep: 'call' },
  { name: 'target hangs past --timeout', setup: async () => ({ env: env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) }), url: `http://${hole.host}/`, args: ['--timeout', '300'] }), code: 'TIMEOUT', exit: 5, failedStep: 'call' },
  { name: 'URL without scheme', setup: async () => ({ env: env(), url: 'hello-abc123-uc.a.run.app/api' }), code: 'USAGE_ERROR', exit: 2, fix: /https:\/\/hello-abc123-uc\.a\.run\.app\/api/ },
  { name: 'host:port without scheme, on loopback', setup: async () => ({ env: env(), url: '127.0.0.1:8080/api' }), code: 'USAGE_ERROR', exit: 2, fix: /http:\/\/127\.0\.0\.1:8080\/api/ },
  { name: 'localhost:port without scheme', setup: async () => ({ env: env(), url: 'localhost:8080/api' }), code: 'USAGE_ERROR', exit: 2, fix: /http:\/\/localhost:8080\/api/ },
  { name: 'an ftp URL', setup: async () => ({ env: env(), url: 'ftp://files.example/x' }), code: 'USAGE_ERROR', exit: 2, summary: /only http and https/ },
  { name: 'plain http to a remote host', setup: async () => ({ env: env(), url: 'http://hello-abc123-uc.a.run.app/' }), code: 'USAGE_ERROR', exit: 2, fix: /--allow-insecure/ },
  { name: 'METADATA_SERVER_DETECTION=bogus', setup: async () => ({ env: env({ METADATA_SERVER_DETECTION: 'bogus' }) }), code: 'USAGE_ERROR', exit: 2, summary: /METADATA_SERVER_DETECTION/ },
  { name: 'GCE_METADATA_HOST with a path', setup: async () => ({ env: env({ GCE_METADATA_HOST: '127.0.0.1:1/computeMetadata/v1' }) }), code: 'USAGE_ERROR', exit: 2, summary: /GCE_METADATA_HOST/ },
];

for (const c of cases) {
  test(`call fails: ${c.name} → ${c.code}`, async () => {
    const { env: e, url, args = [] } = await c.setup();
    const argv = ['call', url ?? hello(), ...args];
    const table = await idcall(argv, e);
    const result = await idcall([...argv, '--json'], e);
    const report = json(result);
    assert.equal(report.verdict.code, c.code, `${report.verdict.summary}\n${table.stdout}`);
    assert.equal(result.code, c.exit);
    assert.equal(table.code, c.exit);
    if (c.failedStep) assert.equal(report.steps.find((s: any) => s.id === c.failedStep)?.status, 'fail');
    if (c.summary) assert.match(report.verdict.summary, c.summary);
    if (c.fix) assert.match(report.verdict.fix, c.fix);
    assert.ok(report.verdict.fix.length > 0, 'every failure has a fix');
    assert.match(table.stdout + table.stderr, new RegExp(`${c.code}`));
    // A usage mistake is one error line before anything runs, never a table of skipped steps.
    if (c.code === 'USAGE_ERROR' && url !== undefined) assert.match(table.stdout + table.stderr, /^error \[USAGE_ERROR\]: [^\n]+\n  Fix: [^\n]+\n$/);
    assert.ok(!/\n\s+at /.test(table.stdout + table.stderr + result.stderr), 'no stack trace');
    assertNoSecrets([table.stdout, table.stderr, result.stdout, result.stderr], emu.secrets());
  });
}

test('call fails: machine clock far from Google\'s → CLOCK_SKEW at the token endpoint', async () => {
  const skewed = await startEmulator({ ...defaultScenario(), switches: { clockOffsetSeconds: 7200 } });
  try {
    const key = await dir.file('skew-key.json', skewed.serviceAccountKey(SA('caller')));
    const report = json(await idcall(['call', `${skewed.urls.services.hello}/`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: key, IDCALL_CERTS_URL: skewed.urls.jwks })));
    assert.equal(report.verdict.code, 'CLOCK_SKEW');
    assert.equal(report.exitCode, 3);
    assert.match(report.verdict.fix, /timedatectl|chrony/);
  } finally {
    await skewed.close();
  }
});

test('call fails: instance without a service account → METADATA_ERROR', async () => {
  const bare = await startEmulator({ ...defaultScenario(), metadata: {} });
  try {
    const report = json(await idcall(['call', `${bare.urls.services.hello}/`, '--json'], env({ GCE_METADATA_HOST: bare.urls.metadataHost })));
    assert.equal(report.verdict.code, 'METADATA_ERROR');
    assert.equal(report.exitCode, 3);
    assert.match(report.verdict.summary, /no service account/);
  } finally {
    await bare.close();
  }
});

test('call: 404 and 500 from the application are NOT_FOUND (1) and TARGET_ERROR (1); redirects are not followed', async () => {
  const hits: string[] = [];
  const app = createServer((req, res) => {
    hits.push(req.url!);
    if (req.url === '/missing') return res.writeHead(404).end('nope');
    if (req.url === '/moved') return res.writeHead(302, { location: 'https://elsewhere.example/' }).end();
    res.writeHead(500).end('boom');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
  try {
    const e = env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) });
    const missing = json(await idcall(['call', `${base}/missing`, '--json'], e));
    assert.deepEqual([missing.verdict.code, missing.exitCode], ['NOT_FOUND', 1]);
    const boom = json(await idcall(['call', `${base}/boom`, '--json'], e));
    assert.deepEqual([boom.verdict.code, boom.exitCode], ['TARGET_ERROR', 1]);
    const moved = json(await idcall(['call', `${base}/moved`, '--json'], e));
    assert.equal(moved.response.redirect, 'https://elsewhere.example/');
    assert.match(moved.verdict.summary, /does not follow redirects/);
    assert.deepEqual(hits, ['/missing', '/boom', '/moved']);
  } finally {
    app.close();
  }
});

test('call: a token endpoint answering 503 is TOKEN_ENDPOINT_ERROR blamed on mint', async () => {
  emu.setFaults([{ endpoint: 'token', kind: 'status', status: 503 }]);
  try {
    const report = json(await idcall(['call', hello(), '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) })));
    assert.equal(report.verdict.code, 'TOKEN_ENDPOINT_ERROR');
    assert.equal(report.steps.find((s: any) => s.id === 'mint').status, 'fail');
    assert.equal(report.steps.find((s: any) => s.id === 'mint').requests.at(-1).status, 503);
  } finally {
    emu.setFaults([]);
  }
});

test('the shorthand `idcall 127.0.0.1:8080` gets the same guidance as call, not "Unknown argument"', async () => {
  const result = await idcall(['127.0.0.1:8080'], env());
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^error \[USAGE_ERROR\]: URL "127\.0\.0\.1:8080" has no scheme\.\n  Fix: Pass the full URL: http:\/\/127\.0\.0\.1:8080/);
});

test('wrong audience naming another service: the fix names the audience the called service accepts, and changes only the called service', async () => {
  const helloOrigin = new URL(emu.urls.services.hello!).origin;
  const other = emu.serviceRunUrls.private![0]!;
  const report = json(await idcall(['call', `${helloOrigin}/api`, '--audience', other, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) })));
  assert.equal(report.verdict.code, 'AUDIENCE_MISMATCH');
  assert.match(report.verdict.fix, new RegExp(`drop --audience \\(the default, ${helloOrigin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, is its URL's origin\\)`));
  assert.doesNotMatch(report.verdict.fix, /services update private/, 'never a change to the service the wrong audience names');
});

test('https:// to a port that speaks plain HTTP says so and suggests http://, not a TLS-intercepting proxy', async () => {
  const plainPort = new URL(emu.urls.services.hello!).port;
  const report = json(await idcall(['call', `https://127.0.0.1:${plainPort}/api`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) })));
  assert.equal(report.verdict.code, 'TLS_ERROR');
  assert.match(report.verdict.summary, /answers plain HTTP, not TLS/);
  assert.match(report.verdict.fix, new RegExp(`Use http://127\\.0\\.0\\.1:${plainPort}/api`));
  assert.doesNotMatch(report.verdict.fix, /NODE_EXTRA_CA_CERTS/);
});

test('a denied --delegates chain: the fix names the hop that failed and the grant missing there, not one the caller has', async () => {
  const user = await dir.file('delegating-user.json', emu.userCredentials('alice@example.com'));
  const userEnv = env({ GOOGLE_APPLICATION_CREDENTIALS: user });
  // alice → invoker (allowed) → no-access (invoker may not): the last hop.
  const last = json(await idcall(['token', '--audience', 'https://svc.example', '--impersonate-service-account', SA('no-access'), '--delegates', SA('invoker'), '--json'], userEnv, {}, { tokenAllowedOn: 'stdout' }));
  assert.equal(last.verdict.code, 'IMPERSONATION_DENIED');
  assert.match(last.verdict.summary, /the last delegate, invoker@demo-project\.iam\.gserviceaccount\.com, may not mint tokens for no-access@/);
  assert.match(last.verdict.fix, /add-iam-policy-binding no-access@demo-project\.iam\.gserviceaccount\.com --member=serviceAccount:invoker@demo-project\.iam\.gserviceaccount\.com --role=roles\/iam\.serviceAccountTokenCreator/);
  assert.doesNotMatch(last.verdict.fix, /--member=user:alice/, 'not a grant to the caller, who is not the one asking the target');
  // alice → no-access (alice may not delegate through it) → invoker: a hop inside the chain.
  const inner = json(await idcall(['token', '--audience', 'https://svc.example', '--impersonate-service-account', SA('invoker'), '--delegates', SA('no-access'), '--json'], userEnv, {}, { tokenAllowedOn: 'stdout' }));
  assert.equal(inner.verdict.code, 'IMPERSONATION_DENIED');
  assert.match(inner.verdict.summary, /a hop of the delegation chain alice@example\.com → no-access@.* → invoker@/);
  assert.match(inner.verdict.fix, /add-iam-policy-binding no-access@demo-project\.iam\.gserviceaccount\.com --member=user:alice@example\.com --role=roles\/iam\.serviceAccountTokenCreator/);
});

test('a target that answers with unreadable HTTP (headers over 16 KB, a body short of its Content-Length, garbage) is named as answering, not as unreachable', async () => {
  const { createServer: createTcpServer } = await import('node:net');
  const answers: Record<string, string> = {
    '/headers': `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100_000)}\r\ncontent-length: 1\r\n\r\nx`,
    '/short': 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhello',
    '/garbage': 'HTTP/1.1 200 OK\r\nbad header line\r\n\r\n',
  };
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (d) => {
      const path = /^[A-Z]+ (\S+)/.exec(d.toString())?.[1] ?? '/';
      socket.end(answers[path] ?? 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    for (const [path, words] of [['/headers', /answered, but its response headers are over/], ['/short', /answered, but its response body does not match its Content-Length/], ['/garbage', /answered, but its response is not valid HTTP\/1\.1 \(Invalid header token\)/]] as const) {
      const report = json(await idcall(['call', `${base}${path}`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) })));
      assert.equal(report.verdict.code, 'TARGET_UNREACHABLE', path);
      assert.match(report.verdict.summary, words, path);
      assert.doesNotMatch(report.verdict.fix, /VPN|firewall|resolves/, `${path}: the fix is about the answer, not the network`);
    }
  } finally {
    server.close();
  }
});

test('a GCE_METADATA_HOST that does not answer as a metadata server (endless body, silence, refusal, a web server) is named in the verdict and its fix, within the probe bound', async () => {
  const servers: Record<string, (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void> = {
    'an endless body': (_req, res) => {
      res.writeHead(200, { 'metadata-flavor': 'Google' });
      const timer = setInterval(() => res.write(Buffer.alloc(65536, 101)), 1);
      res.on('close', () => clearInterval(timer));
    },
    'silence after the headers': (_req, res) => void res.writeHead(200, { 'metadata-flavor': 'Google' }).flushHeaders(),
    'a web server': (_req, res) => void res.end('<html>hello</html>'),
  };
  for (const [name, handler] of Object.entries(servers)) {
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const report = json(await idcall(['token', '--audience', 'https://svc.run.app', '--json'], env({ GCE_METADATA_HOST: host })));
      assert.equal(report.verdict.code, 'NO_CREDENTIALS', name);
      assert.match(report.verdict.summary, new RegExp(`GCE_METADATA_HOST names http://${host.replace(/\./g, '\\.')}: `), name);
      assert.match(report.verdict.fix, /^Check that GCE_METADATA_HOST points at a running metadata server/, name);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }
  const refused = json(await idcall(['token', '--audience', 'https://svc.run.app', '--json'], env({ GCE_METADATA_HOST: `127.0.0.1:${await closedPort()}` })));
  assert.match(refused.verdict.summary, /GCE_METADATA_HOST names .*connection refused/);
});

test('a subject-token URL (credential_source.url) that refuses or floods is blamed, with a fix about that endpoint, not STS or Google', async () => {
  const idp = createServer((req, res) => {
    if (req.url === '/denied') return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"no session"}');
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write(Buffer.alloc(65536, 97)), 1);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(idp.address() as { port: number }).port}`;
  try {
    const creds = await emu.writeCredentials(`${dir.path}/fed-url`);
    const config = JSON.parse(await (await import('node:fs/promises')).readFile(creds.files.externalAccount!, 'utf8'));
    const stsBefore = emu.requests.filter((r) => r.endpoint === 'sts').length;
    for (const [path, summary] of [['/denied', /^The subject-token source \(credential_source\) answered HTTP 401 \(GET http:\/\/127\.0\.0\.1:\d+\/denied\), not a subject token\.$/], ['/flood', /^The subject-token source \(credential_source\) did not answer \(GET .*\/flood\): /]] as const) {
      config.credential_source = { url: `${base}${path}`, format: { type: 'text' } };
      const report = json(await idcall(['token', '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await dir.file(`fed-url${path.slice(1)}.json`, config), IDCALL_STS_URL: emu.urls.sts })));
      assert.equal(report.verdict.code, 'FEDERATION_FAILED', path);
      assert.match(report.verdict.summary, summary, path);
      assert.match(report.verdict.fix, /credential_source\.url/, path);
      assert.doesNotMatch(report.verdict.fix, /workload-identity-pools providers|status\.cloud\.google\.com/, `${path}: not STS's or Google's fix`);
    }
    assert.equal(emu.requests.filter((r) => r.endpoint === 'sts').length, stsBefore, 'nothing went on to STS');
  } finally {
    idp.closeAllConnections();
    idp.close();
  }
});

test('--source gcloud with a "gcloud" that floods its output is stopped at 1 MB and named, not taken for a login problem', async () => {
  const bin = `${dir.path}/flooding-bin`;
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(bin, { recursive: true });
  await writeFile(`${bin}/gcloud`, '#!/bin/sh\nyes eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln\n', { mode: 0o755 });
  const report = json(await idcall(['token', '--source', 'gcloud', '--audience', 'https://svc.example', '--json'], env({ PATH: `${bin}:${process.env.PATH}` })));
  assert.equal(report.verdict.code, 'TOKEN_ENDPOINT_ERROR');
  assert.match(report.verdict.summary, /printed more than 1 MB, which no token is/);
  assert.doesNotMatch(report.verdict.fix, /gcloud auth login/);
});

test('a 401 or 403 without Google\'s marks, for a token that checked out, is not blamed on IAM or the audience as a fact (code and exit unchanged)', async () => {
  const marked = (res: import('node:http').ServerResponse, status: number) => res.writeHead(status, { server: 'Google Frontend', 'content-type': 'text/html' }).end('<h1>Error: Forbidden</h1>');
  const app = createServer((req, res) => (req.url?.startsWith('/google') ? marked(res, req.url.endsWith('401') ? 401 : 403) : res.writeHead(req.url === '/401' ? 401 : 403, { 'content-type': 'application/json' }).end('{"error":"login required"}')));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
  try {
    for (const [path, code] of [['/401', 'AUDIENCE_MISMATCH'], ['/403', 'INVOKER_DENIED']] as const) {
      const result = await idcall(['call', `${base}${path}`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) }));
      const report = json(result);
      assert.equal(report.verdict.code, code, path);
      assert.equal(result.code, 4, path);
      assert.match(report.verdict.summary, /not as Google's front end answers[\s\S]*the application, or something in front of it that is not Google, refused/, path);
      assert.match(report.verdict.fix, /^Look at the application's own access rules[\s\S]*--header-name X-Serverless-Authorization/, path);
    }
    const google = json(await idcall(['call', `${base}/google403`, '--json'], env({ GOOGLE_APPLICATION_CREDENTIALS: await keyFile(0) })));
    assert.equal(google.verdict.code, 'INVOKER_DENIED');
    assert.match(google.verdict.summary, /is not allowed to invoke it \(no roles\/run\.invoker\)/, 'with Google\'s marks, the IAM verdict stands');
  } finally {
    app.close();
  }
});
