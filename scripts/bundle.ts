// Bundle the CLI into dist/bundle/ for start-up time: yargs, cli-table3, google-auth-library and undici each
// become a chunk loaded only by the commands that need it.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

// yargs' help layout measures text with string-width, whose module body costs ≈20 ms at every start;
// src/render/text-width.ts answers the same question lazily (see there).
const lazyTextWidth: Plugin = {
  name: 'lazy-text-width',
  setup(b) {
    const shim = fileURLToPath(new URL('../src/render/text-width.ts', import.meta.url));
    b.onResolve({ filter: /^string-width$/ }, (args) => (/node_modules\/(yargs|cliui|wrap-ansi)\//.test(args.importer) ? { path: shim } : undefined));
  },
};

rmSync('dist/bundle', { recursive: true, force: true }); // chunk names are content hashes: drop the last build's
await build({
  entryPoints: ['src/cli/entry.ts'],
  outdir: 'dist/bundle',
  // Splitting keeps the entry chunk tiny (--version and --help answer before the rest is even read), and
  // loads google-auth-library's code only for the credentials that need it.
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  plugins: [lazyTextWidth],
  // yargs, cli-table3, google-auth-library and undici are CommonJS in places: give the bundle a require().
  banner: { js: "import { createRequire as __idcallRequire } from 'node:module'; const require = __idcallRequire(import.meta.url);" },
  logLevel: 'warning',
});
