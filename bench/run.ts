// `npm run bench [-- NAME…]`: run the benches (all by default); each prints ratios measured side by side in one run.
import { spawnSync } from 'node:child_process';

const all = ['startup', 'e2e', 'proxy', 'h2c', 'download', 'compare', 'intercept'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((a) => !all.includes(a));
if (unknown.length) {
  process.stderr.write(`Unknown bench ${unknown.join(', ')}; choose from ${all.join(', ')} (npm run bench:soak for the soak).\n`);
  process.exit(2);
}
// The benches time the built CLI: build it first, so a bench never measures yesterday's code.
if (spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) throw new Error('npm run build failed');
for (const name of wanted.length ? wanted : all) {
  process.stdout.write(`\n=== bench: ${name}\n`);
  const result = spawnSync(process.execPath, [`bench/${name}.ts`], { stdio: 'inherit' });
  if (result.status !== 0) process.exitCode = 1;
}
