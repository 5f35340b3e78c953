// `npm run bench [-- NAME…]`: run the benches (all by default); each prints ratios measured side by side in one run.
import { spawnSync } from 'node:child_process';

const all = ['startup', 'e2e', 'proxy'];
const wanted = process.argv.slice(2).filter((a) => all.includes(a));
for (const name of wanted.length ? wanted : all) {
  process.stdout.write(`\n=== bench: ${name}\n`);
  const result = spawnSync(process.execPath, [`bench/${name}.ts`], { stdio: 'inherit' });
  if (result.status !== 0) process.exitCode = 1;
}
