// gRPC users' number: requests per second through `idcall proxy --h2c` against direct h2c requests to the same
// emulator service (which verifies the token on every request), side by side, rounds interleaved, with h2load
// (Debian's nghttp2-client) as the load generator: `h2load -n 20000 -c 16 -m 10`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { child, fmt, freePort, machine, median, writeSection } from './lib.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const BASE_DIR = process.env.BENCH_PROXY_BASE;

if (spawnSync('h2load', ['--version']).status !== 0) {
  process.stdout.write('h2c bench skipped: h2load is not installed (apt-get install nghttp2-client).\n');
  process.exit(0);
}

const emulator = child(['bench/fixtures/emulator.ts']);
const children = [emulator.proc];

/** One h2load run; its "finished in …, N req/s" line. */
function h2load(url: string, headers: string[]): { rps: number; failed: number } {
  const args = ['-n', String(REQUESTS), '-c', '16', '-m', '10', ...headers.flatMap((h) => ['-H', h]), url];
  const out = spawnSync('h2load', args, { encoding: 'utf8', timeout: 120_000 });
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out.stdout)?.[1] ?? NaN);
  const failed = Number(/requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(out.stdout)?.[1] ?? NaN);
  return { rps, failed };
}

try {
  const info = JSON.parse(await emulator.firstLine);
  const target: string = info.urls.services.hello;
  const env = { ...process.env, GOOGLE_APPLICATION_CREDENTIALS: info.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', HOME: '/nonexistent', IDCALL_TOKEN_URL: info.urls.token };
  const token = spawnSync(process.execPath, ['src/cli/entry.ts', 'token', '--audience', target], { env, encoding: 'utf8' }).stdout.trim();
  const port = await freePort();
  const proxy = child(['src/cli/entry.ts', 'proxy', '--target', target, '--h2c', '--listen', `127.0.0.1:${port}`, '--log-format', 'none'], env);
  children.push(proxy.proc);
  await proxy.firstLine;
  const passPort = await freePort();
  const pass = child(['bench/fixtures/h2-passthrough.ts', target, token, String(passPort)]);
  children.push(pass.proc);
  await pass.firstLine;
  // BENCH_PROXY_BASE=DIR (another checkout, e.g. a git worktree of an older commit): its proxy too, in the same rounds.
  const basePort = await freePort();
  if (BASE_DIR) {
    const base = child([join(BASE_DIR, 'src/cli/entry.ts'), 'proxy', '--target', target, '--h2c', '--listen', `127.0.0.1:${basePort}`, '--log-format', 'none'], env);
    children.push(base.proc);
    await base.firstLine;
  }

  const configs: [string, string, string[]][] = [
    ['direct h2c', `${target}/`, [`authorization: Bearer ${token}`]],
    ['bare node:http2 pass-through', `http://127.0.0.1:${passPort}/`, []],
    ['idcall proxy --h2c', `http://127.0.0.1:${port}/`, []],
    ...(BASE_DIR ? [[`idcall proxy --h2c (${BASE_DIR})`, `http://127.0.0.1:${basePort}/`, []] as [string, string, string[]]] : []),
  ];
  for (const [, url, headers] of configs) h2load(url, headers); // warm-up
  const rounds: Record<string, number[]> = {};
  let failed = 0;
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, url, headers] of configs) {
      const r = h2load(url, headers);
      failed += r.failed;
      (rounds[name] ??= []).push(r.rps);
      process.stderr.write(`round ${i + 1} ${name}: ${fmt(r.rps, 0)} req/s, ${r.failed} failed\n`);
    }
  }
  const direct = median(rounds['direct h2c']!);
  const proxied = median(rounds['idcall proxy --h2c']!);
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: \`h2load -n ${REQUESTS} -c 16 -m 10\` against the emulator's h2c service, direct (with a token) and through \`idcall proxy --h2c\`, ${ROUNDS} interleaved rounds after a warm-up (median shown), everything on the same 2 cores. Command: \`npm run bench -- h2c\`.`,
    '',
    '| configuration | req/s | vs direct |',
    '|---|---|---|',
    `| direct h2c | ${fmt(direct, 0)} | 1.00× |`,
    `| bare node:http2 pass-through | ${fmt(median(rounds['bare node:http2 pass-through']!), 0)} | ${fmt(median(rounds['bare node:http2 pass-through']!) / direct)}× |`,
    `| idcall proxy --h2c | ${fmt(proxied, 0)} | ${fmt(proxied / direct)}× |`,
    ...(BASE_DIR ? [`| idcall proxy --h2c at ${BASE_DIR} | ${fmt(median(rounds[`idcall proxy --h2c (${BASE_DIR})`]!), 0)} | ${fmt(median(rounds[`idcall proxy --h2c (${BASE_DIR})`]!) / direct)}× |`] : []),
    '',
    `idcall proxy --h2c: **${fmt(proxied / direct)}×** direct h2c requests per second (target ≥ 0.8×), **${fmt(proxied / median(rounds['bare node:http2 pass-through']!))}×** the bare node:http2 pass-through; ${failed} failed requests in all rounds.`,
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  await writeSection('h2c', md);
} finally {
  for (const c of children) c.kill();
}
