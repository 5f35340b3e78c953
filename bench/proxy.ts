// Proxy throughput and latency, side by side in one run: direct, minimal pass-through, mint-per-request, idcall proxy.
// All four stay up; rounds interleave them (A B C D, A B C D, …) and the median round counts, so drift hits all alike.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { child, fmt, freePort, HAVE_WRK, load, type LoadResult, machine, median, writeSection } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BASE_DIR = process.env.BENCH_PROXY_BASE;
const emulator = child(['bench/fixtures/emulator.ts']);
const children = [emulator.proc];

try {
  const info = JSON.parse(await emulator.firstLine);
  const target: string = info.urls.services.hello;
  const keyFile: string = info.creds.files.serviceAccount;
  const key = JSON.parse(await readFile(keyFile, 'utf8'));
  const { JWT, gaxios } = await import('google-auth-library');
  const transporter = new gaxios.Gaxios({ fetchImplementation: ((u: string, i: RequestInit) => fetch(String(u) === 'https://oauth2.googleapis.com/token' ? info.urls.token : u, i)) as never });
  const token = await new JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, transporter }).fetchIdToken(target);

  const [passPort, mintPort, idPort, basePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const proxyEnv = { ...process.env, GOOGLE_APPLICATION_CREDENTIALS: keyFile, METADATA_SERVER_DETECTION: 'none', HOME: '/nonexistent' };
  const started = [
    child(['bench/fixtures/passthrough.ts', target, token, String(passPort)]),
    child(['bench/fixtures/mint-per-request.ts', target, keyFile, info.urls.token, String(mintPort)]),
    child(['src/cli/entry.ts', 'proxy', '--target', target, '--listen', `127.0.0.1:${idPort}`, '--log-format', 'none'], proxyEnv),
    // BENCH_PROXY_BASE=DIR (another checkout, e.g. a git worktree of an older commit): its proxy too, in the same rounds.
    ...(BASE_DIR ? [child([join(BASE_DIR, 'src/cli/entry.ts'), 'proxy', '--target', target, '--listen', `127.0.0.1:${basePort}`, '--log-format', 'none'], proxyEnv)] : []),
  ];
  children.push(...started.map((s) => s.proc));
  await Promise.all(started.map((s) => s.firstLine));

  const configs: [string, string, Record<string, string>][] = [
    ['direct', `${target}/`, { authorization: `Bearer ${token}` }],
    ['passthrough', `http://127.0.0.1:${passPort}/`, {}],
    ['mint-per-request', `http://127.0.0.1:${mintPort}/`, {}],
    ['idcall proxy', `http://127.0.0.1:${idPort}/`, {}],
    ...(BASE_DIR ? [[`idcall proxy (${BASE_DIR})`, `http://127.0.0.1:${basePort}/`, {}] as [string, string, Record<string, string>]] : []),
  ];
  for (const [, url, headers] of configs) await load(url, 1.5, 32, headers); // warm-up: JIT, pools, the token cache
  const rounds: Record<string, LoadResult[]> = {};
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, url, headers] of configs) {
      const result = await load(url, SECONDS, 32, headers);
      (rounds[name] ??= []).push(result);
      process.stderr.write(`round ${i + 1} ${name}: ${fmt(result.rps, 0)} req/s, p50 ${fmt(result.p50)} ms, p99 ${fmt(result.p99)} ms, errors ${result.errors}\n`);
    }
  }
  const r = Object.fromEntries(
    Object.entries(rounds).map(([name, xs]) => [name, { rps: median(xs.map((x) => x.rps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), errors: xs.reduce((a, x) => a + x.errors, 0) }]),
  );
  const ratioThroughput = r['idcall proxy']!.rps / r.passthrough!.rps;
  const ratioP50 = r['idcall proxy']!.p50 / r.passthrough!.p50;
  const vsMint = r['idcall proxy']!.rps / r['mint-per-request']!.rps;
  const rows = Object.entries(r).map(([name, x]) => `| ${name} | ${fmt(x.rps, 0)} | ${fmt(x.p50)} | ${fmt(x.p99)} | ${x.errors} | ${fmt(x.rps / r.passthrough!.rps)}× |`);
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: ${ROUNDS} interleaved rounds of ${SECONDS} s per configuration (median shown) after a 1.5 s warm-up; 32 keep-alive connections, closed loop (${HAVE_WRK ? '`wrk -t1 -c32`' : 'built-in undici load generator; install `wrk` for a C one'}), GET of the emulator's private service (which verifies the RS256 token on every request); upstream, proxies and load generator in separate processes on the same 2 cores. Command: \`npm run bench -- proxy\`.`,
    '',
    '| configuration | req/s | p50 ms | p99 ms | errors | throughput vs pass-through |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `idcall proxy: **${fmt(ratioThroughput)}×** the minimal pass-through's throughput (target ≥ 1.0×: at least as fast as the bare pass-through), p50 **${fmt(ratioP50)}×** (target ≤ 1.10×), **${fmt(vsMint, 1)}×** the mint-per-request proxy (target ≥ 8×).`,
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  await writeSection('proxy', md);
} finally {
  for (const c of children) c.kill();
}
