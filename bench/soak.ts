// Proxy soak: a steady request rate through `idcall proxy` for SOAK_SECONDS (default 300) with tokens that live
// TOKEN_SECONDS (default 30), so the cache refreshes across many expiries. Pass: zero failed requests, and RSS at
// the end within 10% of RSS after warm-up. Figures go to docs/performance.md.
import { readFile } from 'node:fs/promises';
import { Pool } from 'undici';
import { child, fmt, freePort, machine, writeSection } from './lib.ts';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const TOKEN_SECONDS = Number(process.env.TOKEN_SECONDS ?? 30);
const RATE = Number(process.env.SOAK_RATE ?? 200); // requests per second
const emulator = child(['bench/fixtures/emulator.ts', String(TOKEN_SECONDS)]);
const children = [emulator.proc];
try {
  const info = JSON.parse(await emulator.firstLine);
  const port = await freePort();
  const proxy = child(['src/cli/entry.ts', 'proxy', '--target', info.urls.services.hello, '--listen', `127.0.0.1:${port}`, '--log-format', 'none'], {
    ...process.env,
    GOOGLE_APPLICATION_CREDENTIALS: info.creds.files.serviceAccount,
    METADATA_SERVER_DETECTION: 'none',
    HOME: '/nonexistent',
  });
  children.push(proxy.proc);
  await proxy.firstLine;
  const pid = proxy.proc.pid!;
  const rss = async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
  let ok = 0;
  let failed = 0;
  const failures: string[] = [];
  const send = () =>
    pool.request({ path: '/', method: 'GET' }).then(
      async (r) => {
        await r.body.dump();
        if (r.statusCode === 200) ok++;
        else {
          failed++;
          failures.push(`HTTP ${r.statusCode}`);
        }
      },
      (err: Error) => {
        failed++;
        failures.push(err.message);
      },
    );
  const warmup = Math.min(30, SECONDS / 5);
  const start = Date.now();
  let rssWarm = 0;
  const samples: [number, number][] = [];
  const pending = new Set<Promise<void>>();
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / RATE;
    const now = Date.now();
    if (now - start > SECONDS * 1000) break;
    if (due > now) await new Promise((r) => setTimeout(r, due - now));
    const p = send().finally(() => pending.delete(p));
    pending.add(p);
    if (i % (RATE * 10) === 0) {
      const elapsed = (Date.now() - start) / 1000;
      const mb = await rss();
      samples.push([elapsed, mb]);
      if (!rssWarm && elapsed >= warmup) rssWarm = mb;
      process.stderr.write(`t=${fmt(elapsed, 0)}s ok=${ok} failed=${failed} rss=${fmt(mb, 1)} MB\n`);
    }
  }
  await Promise.all(pending);
  const rssEnd = await rss();
  await pool.close();
  const growth = rssEnd / rssWarm - 1;
  // RSS is a sawtooth (V8 grows the heap, then a major collection gives it back), so two single samples can land
  // on different teeth: compare the peaks of the first and the last third after warm-up as well. A leak raises them.
  const steady = samples.filter(([t]) => t >= warmup);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const peak = (xs: [number, number][]) => Math.max(...xs.map(([, mb]) => mb));
  const peakEarly = peak(steady.slice(0, third));
  const peakLate = peak(steady.slice(-third));
  const peakGrowth = peakLate / peakEarly - 1;
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${fmt(x * 100, 1)}%`;
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: ${SECONDS} s at ${RATE} req/s through \`idcall proxy\` to the emulator, tokens living ${TOKEN_SECONDS} s (≈${Math.floor(SECONDS / TOKEN_SECONDS)} expiries). Command: \`npm run bench:soak\` (\`SOAK_SECONDS\`, \`SOAK_RATE\`, \`TOKEN_SECONDS\` to change it).`,
    '',
    '| requests ok | failed | RSS after warm-up | RSS at end | growth | peak RSS, first third | peak RSS, last third | peak growth |',
    '|---|---|---|---|---|---|---|---|',
    `| ${ok} | ${failed} | ${fmt(rssWarm, 1)} MB | ${fmt(rssEnd, 1)} MB | ${pct(growth)} | ${fmt(peakEarly, 1)} MB | ${fmt(peakLate, 1)} MB | **${pct(peakGrowth)}** (target: at most +10%) |`,
    '',
    `RSS every 10 s (MB): ${samples.map(([, mb]) => fmt(mb, 0)).join(' ')}.`,
    ...(failures.length ? ['', `Failures: ${[...new Set(failures)].slice(0, 5).join('; ')}`] : []),
  ].join('\n');
  process.stdout.write(md + '\n');
  await writeSection('soak', md);
  // Memory that shrinks after warm-up (GC catching up) is fine; peaks rising past 10% is a leak.
  if (failed > 0 || peakGrowth > 0.1) process.exitCode = 1;
} finally {
  for (const c of children) c.kill();
}
