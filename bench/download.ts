// A 1 GB body to `-o`, idcall against `curl -o` of the same URL on the same machine, side by side: throughput and
// idcall's peak RSS (VmHWM, polled from /proc). Targets: RSS ≤ 100 MB, throughput ≥ 0.8× curl.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { child, fmt, machine, median, writeSection } from './lib.ts';

const BYTES = Number(process.env.BENCH_DOWNLOAD_BYTES ?? 1024 ** 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

const hasCurl = spawnSync('curl', ['--version']).status === 0;
const emulator = child(['bench/fixtures/emulator.ts']);
// The body comes from a plain local server: what is measured is the client, not the emulator.
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BYTES });
  let sent = 0;
  const pump = () => {
    while (sent < BYTES) {
      const piece = BYTES - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, BYTES - sent);
      sent += piece.length;
      if (!res.write(piece)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blob`;
const dir = await mkdtemp(join(tmpdir(), 'idcall-download-'));

/** Run a command, polling its peak RSS; resolves with seconds taken and the peak in MB. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; peakMb: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const proc = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let peak = 0;
    let err = '';
    proc.stderr.on('data', (c) => (err += c));
    const poll = setInterval(() => {
      readFile(`/proc/${proc.pid}/status`, 'utf8').then(
        (s) => (peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))),
        () => {},
      );
    }, 20);
    proc.once('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err}`));
      resolve({ seconds: (performance.now() - t0) / 1000, peakMb: peak / 1024 });
    });
  });
}

try {
  const info = JSON.parse(await emulator.firstLine);
  const env = { ...process.env, GOOGLE_APPLICATION_CREDENTIALS: info.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', HOME: '/nonexistent', IDCALL_CERTS_URL: info.urls.jwks };
  const runs: Record<string, { seconds: number; peakMb: number }[]> = {};
  for (let i = 0; i < ROUNDS; i++) {
    const idcall = await timed(process.execPath, ['bin/idcall.js', 'call', url, '-o', join(dir, 'idcall.bin'), '--max-time', '10m'], env);
    (runs.idcall ??= []).push(idcall);
    process.stderr.write(`round ${i + 1} idcall: ${fmt(BYTES / 1e6 / idcall.seconds, 0)} MB/s, peak RSS ${fmt(idcall.peakMb, 0)} MB\n`);
    if (hasCurl) {
      const curl = await timed('curl', ['-sS', '-o', join(dir, 'curl.bin'), url], env);
      (runs.curl ??= []).push(curl);
      process.stderr.write(`round ${i + 1} curl: ${fmt(BYTES / 1e6 / curl.seconds, 0)} MB/s, peak RSS ${fmt(curl.peakMb, 0)} MB\n`);
    }
  }
  const rate = (name: string) => BYTES / 1e6 / median(runs[name]!.map((r) => r.seconds));
  const peak = Math.max(...runs.idcall!.map((r) => r.peakMb));
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: a ${fmt(BYTES / 1024 ** 3, 1)} GB body from a local server written with \`-o\`, ${ROUNDS} interleaved rounds (median throughput, highest peak RSS), the built CLI. Command: \`npm run bench -- download\`.`,
    '',
    '| client | MB/s | peak RSS MB |',
    '|---|---|---|',
    `| idcall call -o | ${fmt(rate('idcall'), 0)} | ${fmt(peak, 0)} |`,
    ...(runs.curl ? [`| curl -o | ${fmt(rate('curl'), 0)} | ${fmt(Math.max(...runs.curl.map((r) => r.peakMb)), 0)} |`] : []),
    '',
    runs.curl
      ? `idcall: **${fmt(rate('idcall') / rate('curl'))}×** curl's throughput (target ≥ 0.8×), peak RSS **${fmt(peak, 0)} MB** (target ≤ 100 MB).`
      : `idcall: peak RSS **${fmt(peak, 0)} MB** (target ≤ 100 MB); curl is not installed, so no throughput ratio.`,
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  await writeSection('download', md);
} finally {
  emulator.proc.kill();
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
}
