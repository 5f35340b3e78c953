// End to end against the emulator: `idcall token` vs `gcloud auth print-identity-token` with the same key and the
// same metadata server; and `idcall doctor` vs google-auth-library's getClient() off Google Cloud with the
// metadata address blackholed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { child, fmt, machine, NODE, timeCommand, writeSection } from './lib.ts';

if (!existsSync('dist/bundle/entry.js')) execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const emulator = child(['bench/fixtures/emulator.ts']);
const hole = createServer(() => {}); // accepts, never answers: the metadata address behind some firewalls
await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
const holeHost = `127.0.0.1:${(hole.address() as { port: number }).port}`;
const lines: string[] = [];
try {
  const info = JSON.parse(await emulator.firstLine);
  const key: string = info.creds.files.serviceAccount;
  const home = mkdtempSync(join(tmpdir(), 'idcall-bench-home-'));
  const base = { PATH: process.env.PATH, HOME: home, IDCALL_CERTS_URL: info.urls.jwks };
  const gcloud = spawnSync('gcloud', ['--version'], { stdio: 'ignore' }).status === 0;
  lines.push(`Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; median of ${RUNS} runs, the tools alternating. Command: \`npm run bench -- e2e\`.`, '');
  lines.push('| source | idcall ms | gcloud ms | ratio (target ≤ 0.2×) |', '|---|---|---|---|');
  if (gcloud) {
    const config = mkdtempSync(join(tmpdir(), 'idcall-bench-gcloud-'));
    const gEnv = { ...base, CLOUDSDK_CONFIG: config, CLOUDSDK_AUTH_TOKEN_HOST: info.urls.token, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
    execFileSync('gcloud', ['auth', 'activate-service-account', `--key-file=${key}`], { env: gEnv, stdio: 'ignore' });
    const pairs: [string, Record<string, string | undefined>, Record<string, string | undefined>][] = [
      ['service-account key', { ...base, GOOGLE_APPLICATION_CREDENTIALS: key }, gEnv],
      ['metadata server', { ...base, GCE_METADATA_HOST: info.urls.metadataHost }, { ...base, CLOUDSDK_CONFIG: mkdtempSync(join(tmpdir(), 'idcall-bench-gce-')), GCE_METADATA_ROOT: info.urls.metadataHost, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' }],
    ];
    for (const [name, idEnv, gcEnv] of pairs) {
      const id: number[] = [];
      const gc: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        id.push((await timeCommand(NODE, ['bin/idcall.js', 'token', '--audience', 'https://svc.example'], idEnv, 1)).median);
        gc.push((await timeCommand('gcloud', ['auth', 'print-identity-token', '--audiences=https://svc.example'], gcEnv, 1)).median);
      }
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      lines.push(`| ${name} | ${fmt(med(id), 0)} | ${fmt(med(gc), 0)} | **${fmt(med(id) / med(gc))}×** |`);
    }
  } else lines.push('| (gcloud not installed: comparison skipped) | | | |');

  // Off Google Cloud, nothing configured, metadata blackholed.
  const offEnv = { PATH: process.env.PATH, HOME: home, GCE_METADATA_HOST: holeHost };
  const doctor = spawnTimed(NODE, ['bin/idcall.js', 'doctor'], offEnv);
  const getClient = spawnTimed(NODE, ['--input-type=module', '-e', "import { GoogleAuth } from 'google-auth-library'; await new GoogleAuth().getClient().catch(() => {});"], offEnv);
  lines.push('', '| off Google Cloud, nothing configured, metadata blackholed | ms |', '|---|---|');
  lines.push(`| \`idcall doctor\` (target ≤ 1200 ms) | **${fmt(doctor, 0)}** |`, `| google-auth-library \`new GoogleAuth().getClient()\` | ${fmt(getClient, 0)} |`);
} finally {
  emulator.proc.kill();
  hole.close();
}
const md = lines.join('\n');
process.stdout.write(md + '\n');
await writeSection('e2e', md);

function spawnTimed(cmd: string, args: string[], env: Record<string, string | undefined>): number {
  const t0 = performance.now();
  spawnSync(cmd, args, { env: env as NodeJS.ProcessEnv, stdio: 'ignore', timeout: 60_000 });
  return performance.now() - t0;
}
