// Start-up: `idcall --version` and `idcall --help` (the published bin) against `node -e 0`, side by side.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fmt, machine, NODE, timeCommand, writeSection } from './lib.ts';

if (!existsSync('dist/bundle/entry.js')) execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
const RUNS = Number(process.env.BENCH_RUNS ?? 21);
const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const baseline = await timeCommand(NODE, ['-e', '0'], env, RUNS);
const rows: string[] = [];
for (const args of [['--version'], ['--help'], ['call', '--help']]) {
  const t = await timeCommand(NODE, ['bin/idcall.js', ...args], env, RUNS);
  rows.push(`| \`idcall ${args.join(' ')}\` | ${fmt(t.median, 1)} | ${fmt(baseline.median, 1)} | **${fmt(t.median / baseline.median)}×** |`);
}
const md = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; median of ${RUNS} runs each, interleaved with nothing else. Command: \`npm run bench -- startup\`. Target: at most 1.6× \`node -e 0\`.`,
  '',
  '| command | median ms | `node -e 0` ms | ratio |',
  '|---|---|---|---|',
  ...rows,
].join('\n');
process.stdout.write(md + '\n');
await writeSection('startup', md);
