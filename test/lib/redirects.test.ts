// A token goes only to the origin it was minted for, through any redirect: every header placement × every redirect
// status × same-origin / cross-origin / https→http, for idTokenFetch and the undici interceptor in both orders.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Agent, fetch as undiciFetch, interceptors, request } from 'undici';
import { clearIdTokenCache, idTokenFetch, idTokenInterceptor } from '../../src/index.ts';
import { generateSigningKey } from '../../src/emulator/keys.ts';
import { cleanEnv, emulatorFixture } from '../helpers/cli.ts';

const fx = emulatorFixture();
const env = () => cleanEnv(fx.dir.path, { GOOGLE_APPLICATION_CREDENTIALS: fx.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none' });

interface Seen {
  path: string;
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
}

function recorder(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: url.pathname, method: req.method ?? '', headers: req.headers, body });
      const redirect = /^\/r\/(\d{3})$/.exec(url.pathname);
      if (redirect) {
        res.writeHead(Number(redirect[1]), { location: url.searchParams.get('to')!, 'content-length': 0 });
        return void res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('landed');
    });
  };
}

const listen = (server: Server, host: string) => new Promise<number>((r) => server.listen(0, host, () => r((server.address() as { port: number }).port)));

const key = generateSigningKey('localhost');
const homeSeen: Seen[] = [];
const secureSeen: Seen[] = [];
const foreignSeen: Seen[] = [];
const servers: Server[] = [];
let home = '';
let secure = '';
let foreignPort = 0;

before(async () => {
  const a = createServer(recorder(homeSeen));
  const s = createHttpsServer({ key: key.privateKeyPem, cert: key.certificatePem }, recorder(secureSeen));
  const f = createServer(recorder(foreignSeen));
  servers.push(a, s, f);
  home = `http://127.0.0.1:${await listen(a, '127.0.0.1')}`;
  secure = `https://localhost:${await listen(s, '127.0.0.1')}`;
  foreignPort = await listen(f, '127.0.0.1');
});
after(() => {
  for (const s of servers) s.closeAllConnections(), s.close();
});

const bearer = (h: IncomingMessage['headers']): string[] => [h.authorization, h['x-serverless-authorization']].filter((v): v is string => typeof v === 'string' && /Bearer eyJ/.test(v));
const audienceOf = (value: string) => JSON.parse(Buffer.from(value.replace(/^Bearer /, '').split('.')[1]!, 'base64url').toString()).aud as string;

const PLACEMENTS = [
  { name: 'Authorization', headerName: 'Authorization' as const, appHeaders: {} as Record<string, string> },
  { name: 'X-Serverless-Authorization', headerName: 'X-Serverless-Authorization' as const, appHeaders: {} as Record<string, string> },
  { name: "the application's own Authorization", headerName: 'Authorization' as const, appHeaders: { authorization: 'Basic YXBwOnNlY3JldA==' } as Record<string, string> },
];
const STATUSES = [301, 302, 303, 307, 308];
const SCENARIOS = [
  { name: 'same-origin', start: () => home, to: () => `${home}/land`, lands: () => homeSeen, tokenExpected: true },
  { name: 'cross-origin', start: () => home, to: () => `http://127.0.0.1:${foreignPort}/land`, lands: () => foreignSeen, tokenExpected: false },
  { name: 'https→http', start: () => secure, to: () => `http://localhost:${foreignPort}/land`, lands: () => foreignSeen, tokenExpected: false },
];

type Client = (url: string, headerName: 'Authorization' | 'X-Serverless-Authorization', headers: Record<string, string>) => Promise<number>;
const tls = { ca: key.certificatePem };
const CLIENTS: { name: string; make: () => Client }[] = [
  {
    name: 'idTokenFetch',
    make: () => async (url, headerName, headers) => {
      const dispatcher = new Agent({ connect: tls });
      // undici's fetch takes its own Request class: hand it the parts of the global one idTokenFetch builds.
      const viaCa = (input: Request) => undiciFetch(input.url, { method: input.method, headers: [...input.headers], body: input.body, redirect: input.redirect, duplex: 'half', dispatcher } as never);
      const f = idTokenFetch({ env: env(), headerName, fetch: viaCa as never });
      const res = await f(url, { headers });
      await res.arrayBuffer();
      await dispatcher.close();
      return res.status;
    },
  },
  ...[
    { name: 'idTokenInterceptor outside the redirect interceptor', order: 'token-outer' },
    { name: 'idTokenInterceptor inside the redirect interceptor', order: 'redirect-outer' },
  ].map(({ name, order }) => ({
    name,
    make: (): Client => async (url, headerName, headers) => {
      const token = idTokenInterceptor({ env: env(), headerName });
      const redirect = interceptors.redirect({ maxRedirections: 5 });
      // compose(a, b): b is the outermost.
      const agent = new Agent({ connect: tls }).compose(...(order === 'token-outer' ? [redirect, token] : [token, redirect]));
      const res = await request(url, { dispatcher: agent, headers });
      await res.body.dump();
      await agent.close();
      return res.statusCode;
    },
  })),
];

for (const client of CLIENTS) {
  for (const scenario of SCENARIOS) {
    test(`${client.name}: a ${scenario.name} redirect ${scenario.tokenExpected ? 'keeps' : 'drops'} the token, in every placement and for 301/302/303/307/308`, async () => {
      clearIdTokenCache();
      const call = client.make();
      for (const placement of PLACEMENTS) {
        for (const status of STATUSES) {
          const lands = scenario.lands();
          const before = lands.length;
          const start = `${scenario.start()}/r/${status}?to=${encodeURIComponent(scenario.to())}`;
          assert.equal(await call(start, placement.headerName, placement.appHeaders), 200, `${placement.name} ${status}`);
          const landed = lands.slice(before).find((s) => s.path === '/land');
          assert.ok(landed, `${placement.name} ${status}: the redirect was followed`);
          const tokens = bearer(landed.headers);
          if (scenario.tokenExpected) {
            assert.equal(tokens.length, 1, `${placement.name} ${status}: a same-origin hop keeps the token`);
            assert.equal(audienceOf(tokens[0]!), scenario.start());
          } else {
            assert.deepEqual(tokens, [], `${placement.name} ${status}: no idcall header reached ${scenario.to()}`);
          }
        }
      }
    });
  }
}

test('idTokenFetch: a 307 replays the body to the same origin with the token; a 303 turns POST into GET', async () => {
  clearIdTokenCache();
  const f = idTokenFetch({ env: env() });
  for (const [status, method, body] of [
    [307, 'POST', 'payload'],
    [303, 'GET', ''],
  ] as const) {
    const before = homeSeen.length;
    const res = await f(`${home}/r/${status}?to=/land`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
    assert.equal(res.redirected, true);
    assert.equal(res.url, `${home}/land`);
    const landed = homeSeen.slice(before).find((s) => s.path === '/land')!;
    assert.deepEqual([landed.method, landed.body, bearer(landed.headers).length], [method, body, 1]);
  }
});

test('idTokenFetch: a redirect back home after a foreign hop carries the token again, never the foreign one', async () => {
  clearIdTokenCache();
  const f = idTokenFetch({ env: env(), headerName: 'X-Serverless-Authorization' });
  const back = `http://127.0.0.1:${foreignPort}/r/302?to=${encodeURIComponent(`${home}/land`)}`;
  const before = { home: homeSeen.length, foreign: foreignSeen.length };
  assert.equal((await f(`${home}/r/302?to=${encodeURIComponent(back)}`)).status, 200);
  assert.deepEqual(foreignSeen.slice(before.foreign).flatMap((s) => bearer(s.headers)), []);
  const landed = homeSeen.slice(before.home).find((s) => s.path === '/land')!;
  assert.equal(audienceOf(bearer(landed.headers)[0]!), home);
});

test("idTokenFetch: redirect 'manual' hands back the 3xx and follows nothing", async () => {
  const f = idTokenFetch({ env: env(), headerName: 'X-Serverless-Authorization' });
  const before = foreignSeen.length;
  const res = await f(`${home}/r/302?to=${encodeURIComponent(`http://127.0.0.1:${foreignPort}/land`)}`, { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(foreignSeen.length, before);
});
