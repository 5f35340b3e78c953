// `npm pack` holds only what a user needs, and the packed package installs into an empty folder and runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
// npm install builds dist/ (the prepare script); a tree where it was skipped gets a skip, not a failure or a stall.
const built = existsSync(join(root, 'dist/bundle/entry.js')) && existsSync(join(root, 'dist/index.js'));
const skip = built ? false : 'dist/ is not built: run npm run build (npm install runs it)';
const ALLOWED = /^(bin\/idcall\.js|dist\/.+|docs\/[\w-]+\.md|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/;

test('the packed package holds built JS, types, docs, README, LICENSE and CHANGELOG only, and installs and runs', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'idcall-pack-'));
  try {
    // --ignore-scripts: dist/ was built by `npm install`; rebuilding here would race the other test files.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path);
    for (const file of files) assert.match(file, ALLOWED, `${file} should not be published`);
    for (const needed of ['bin/idcall.js', 'dist/index.js', 'dist/index.d.ts', 'dist/bundle/entry.js', 'dist/help.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'docs/troubleshooting.md']) {
      assert.ok(files.includes(needed), `${needed} is published`);
    }
    assert.ok(!files.some((f) => f.startsWith('dist/demo/')), 'the demo is not published');

    const app = join(dir, 'app');
    await run('mkdir', ['-p', app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    await run('npm', ['install', join(dir, info!.filename), '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: app, timeout: 240_000 });
    const version = await run(process.execPath, [join(app, 'node_modules/idcall/bin/idcall.js'), '--version'], { cwd: app });
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const help = await run(process.execPath, [join(app, 'node_modules/.bin/idcall'), 'doctor', '--help'], { cwd: app });
    assert.match(help.stdout, /idcall doctor/);
    const lib = await run(process.execPath, ['--input-type=module', '-e', "import * as m from 'idcall'; console.log(['idTokenFetch','idTokenInterceptor','getIdToken','diagnose','IdcallError','startEmulator'].map(k => typeof m[k]).join(','))"], { cwd: app });
    assert.equal(lib.stdout.trim(), 'function,function,function,function,function,function');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
