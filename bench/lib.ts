// Shared bench plumbing: child processes, free ports, a keep-alive load generator, and the performance doc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { Pool } from 'undici';

export const NODE = process.execPath;

export function child(args: string[], env: Record<string, string | undefined> = process.env): { proc: ChildProcess; firstLine: Promise<string> } {
  const proc = spawn(NODE, args, { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const firstLine = new Promise<string>((resolve, reject) => {
    let buf = '';
    let err = '';
    proc.stdout!.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    proc.stderr!.on('data', (c) => {
      err += c;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    proc.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
  });
  return { proc, firstLine };
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

/** wrk (Debian's `wrk`) where installed: a C load generator leaves the cores to what is measured. */
export const HAVE_WRK = (await import('node:child_process')).spawnSync('wrk', ['--version']).error === undefined;

/** Closed-loop load with wrk, or with the built-in generator where wrk is absent; the same shape of result. */
export async function load(url: string, seconds: number, connections = 32, headers: Record<string, string> = {}): Promise<LoadResult> {
  return HAVE_WRK ? wrkLoad(url, seconds, connections, headers) : nodeLoad(url, seconds, connections, headers);
}

async function wrkLoad(url: string, seconds: number, connections: number, headers: Record<string, string>): Promise<LoadResult> {
  const { execFile } = await import('node:child_process');
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  const out = await new Promise<string>((resolve, reject) => execFile('wrk', args, { timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => (err ? reject(new Error(`wrk failed: ${stderr.trim() || err.code}`)) : resolve(stdout))));
  const ms = (text: string | undefined) => {
    const m = /([\d.]+)(us|ms|s)/.exec(text ?? '');
    return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests,
    errors: non2xx + (socket ? socket.slice(1).reduce((a, n) => a + Number(n), 0) : 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
  };
}

/** Closed-loop load: `connections` keep-alive clients each sending the next request when the last one answers. */
async function nodeLoad(url: string, seconds: number, connections = 32, headers: Record<string, string> = {}): Promise<LoadResult> {
  const origin = new URL(url).origin;
  const path = new URL(url).pathname;
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ path, method: 'GET', headers });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { requests: latencies.length, errors, rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99) };
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
}

/** Replace the block between <!-- bench:NAME --> markers in docs/performance.md. */
export async function writeSection(name: string, markdown: string): Promise<void> {
  const file = new URL('../docs/performance.md', import.meta.url);
  let doc = await readFile(file, 'utf8').catch(() => '# Performance\n');
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  doc = re.test(doc) ? doc.replace(re, block) : `${doc.trimEnd()}\n\n${block}\n`;
  await writeFile(file, doc);
}

/** The middle value (the upper one of an even count): what every bench reports of its interleaved rounds. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Median wall time (ms) of running a command `runs` times. */
export async function timeCommand(cmd: string, args: string[], env: Record<string, string | undefined>, runs: number): Promise<{ median: number; all: number[] }> {
  const { spawnSync } = await import('node:child_process');
  const all: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    all.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return { median: median(all), all };
}
