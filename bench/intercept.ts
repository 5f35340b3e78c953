// --intercept-tls throughput, side by side in one run: requests per second to the emulator's TLS front door directly
// (with a token the client minted) and through `idcall proxy --forward --intercept-tls` (which decrypts, adds the
// token and re-encrypts). Same Node client (undici, 32 connections) for both: wrk and h2load cannot speak through an
// HTTPS proxy. Rounds interleave; the median counts. Target: at least 0.6× direct.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, buildConnector, ProxyAgent, request, type Dispatcher } from 'undici';
import { child, fmt, freePort, machine, median, writeSection } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 32;
const emulator = child(['bench/fixtures/emulator.ts']);
const children = [emulator.proc];

async function load(url: string, dispatcher: Dispatcher, headers: Record<string, string>, seconds: number): Promise<{ rps: number; errors: number }> {
  let done = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        try {
          const res = await request(url, { dispatcher, headers });
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
        } catch {
          errors++;
        }
        done++;
      }
    }),
  );
  return { rps: done / ((performance.now() - started) / 1000), errors };
}

try {
  const info = JSON.parse(await emulator.firstLine);
  const target = `${info.runUrls.hello[0]}/`;
  const host = new URL(target).hostname;
  const caFile: string = info.creds.files.ca;
  const ca = await readFile(caFile, 'utf8');
  const connectTo: string = info.creds.env.IDCALL_CONNECT_TO;
  const frontDoor = /:(\d+)$/.exec(connectTo.split(' ')[0]!)![1]!;
  const env = { ...process.env, GOOGLE_APPLICATION_CREDENTIALS: info.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', HOME: '/nonexistent', IDCALL_CERTS_URL: info.urls.jwks, IDCALL_CACERT: caFile, IDCALL_CONNECT_TO: connectTo };
  const token = await new Promise<string>((resolve, reject) => {
    const t = child(['src/cli/entry.ts', 'token', '--audience', new URL(target).origin], env);
    t.firstLine.then(resolve, reject);
  });
  const port = await freePort();
  const caDir = await mkdtemp(join(tmpdir(), 'idcall-bench-ca-'));
  const proxy = child(['src/cli/entry.ts', 'proxy', '--forward', '--intercept-tls', '--ca-dir', caDir, '--listen', `127.0.0.1:${port}`, '--log-format', 'none', '--allow-host', '*.run.app'], env);
  children.push(proxy.proc);
  proxy.firstLine.catch(() => {}); // it prints no URL line; its exit at the end is expected
  // Forward mode prints no "listening on" line: ready when its health answers.
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${port}/__idcall/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const proxyCa = await readFile(join(caDir, 'ca.pem'), 'utf8');
  // Direct: the same front door, the same host name in SNI and Host, the client's own token.
  const connector = buildConnector({ ca, servername: host });
  const direct = new Agent({ connections: CONNECTIONS, connect: (opts, cb) => connector({ ...opts, hostname: '127.0.0.1', port: frontDoor }, cb) });
  const through = new ProxyAgent({ uri: `http://127.0.0.1:${port}`, connections: CONNECTIONS, requestTls: { ca: proxyCa } } as never);
  const configs: [string, Dispatcher, Record<string, string>][] = [
    ['direct TLS (client adds the token)', direct, { authorization: `Bearer ${token}` }],
    ['through idcall proxy --intercept-tls', through, {}],
  ];
  for (const [, d, h] of configs) await load(target, d, h, 1.5);
  const rounds: Record<string, number[]> = {};
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, d, h] of configs) {
      const r = await load(target, d, h, SECONDS);
      if (r.errors) throw new Error(`${name}: ${r.errors} failed requests`);
      (rounds[name] ??= []).push(r.rps);
      process.stderr.write(`round ${i + 1} ${name}: ${fmt(r.rps, 0)} req/s\n`);
    }
  }
  const [d, t] = configs.map(([name]) => median(rounds[name]!));
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: HTTPS GETs to the emulator's TLS front door (${host}), ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s, median; the same undici client for both. Command: \`npm run bench -- intercept\`.`,
    '',
    '| path | req/s |',
    '|---|---|',
    `| direct TLS (client adds the token) | ${fmt(d!, 0)} |`,
    `| through \`idcall proxy --forward --intercept-tls\` | ${fmt(t!, 0)} |`,
    '',
    `Intercepting: **${fmt(t! / d!)}×** direct (target ≥ 0.6×).`,
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  await writeSection('intercept', md);
  await direct.close();
  await through.close();
} finally {
  for (const c of children) c.kill();
}
