// This tree's built CLI against another commit's (BENCH_BASE, default HEAD~1), side by side in one run: start-up,
// `idcall token` and `idcall call` against the emulator, runs interleaved so both see the same machine. For a
// refactor that must not cost speed: ratios near 1.00× mean no change. The base is built in a git worktree that
// borrows this checkout's node_modules.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { child, fmt, machine, NODE, timeCommand, writeSection } from './lib.ts';

const BASE = process.env.BENCH_BASE ?? 'HEAD~1';
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const here = resolve('.');
if (!existsSync('dist/bundle/entry.js')) execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
const baseSha = execFileSync('git', ['rev-parse', '--short', BASE], { encoding: 'utf8' }).trim();
const worktree = mkdtempSync(join(tmpdir(), 'idcall-base-'));
execFileSync('git', ['worktree', 'add', '--detach', worktree, BASE], { stdio: 'ignore' });
const emulator = child(['bench/fixtures/emulator.ts']);
try {
  symlinkSync(join(here, 'node_modules'), join(worktree, 'node_modules'));
  execFileSync('npm', ['run', 'build'], { cwd: worktree, stdio: ['ignore', 'ignore', 'inherit'] });
  const info = JSON.parse(await emulator.firstLine);
  const home = mkdtempSync(join(tmpdir(), 'idcall-bench-home-'));
  const env = { PATH: process.env.PATH, HOME: home, GOOGLE_APPLICATION_CREDENTIALS: info.creds.files.serviceAccount, METADATA_SERVER_DETECTION: 'none', IDCALL_CERTS_URL: info.urls.jwks };
  const cases: [string, string[]][] = [
    ['--version', ['--version']],
    ['token --audience …', ['token', '--audience', 'https://svc.example']],
    ['call <hello>', ['call', `${info.urls.services.hello}/`]],
  ];
  const rows: string[] = [];
  for (const [name, args] of cases) {
    const now: number[] = [];
    const then: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      now.push((await timeCommand(NODE, [join(here, 'bin/idcall.js'), ...args], env, 1)).median);
      then.push((await timeCommand(NODE, [join(worktree, 'bin/idcall.js'), ...args], env, 1)).median);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    rows.push(`| \`idcall ${name}\` | ${fmt(med(now), 1)} | ${fmt(med(then), 1)} | **${fmt(med(now) / med(then))}×** |`);
  }
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}: this tree against ${baseSha} (\`BENCH_BASE\`), both built, median of ${RUNS} interleaved runs. Command: \`npm run bench -- compare\` (\`BENCH_BASE=REF\` picks the base).`,
    '',
    `| command | this tree ms | ${baseSha} ms | ratio |`,
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
  process.stdout.write(md + '\n');
  await writeSection('compare', md);
} finally {
  emulator.proc.kill();
  execFileSync('git', ['worktree', 'remove', '--force', worktree], { stdio: 'ignore' });
  rmSync(worktree, { recursive: true, force: true });
}
