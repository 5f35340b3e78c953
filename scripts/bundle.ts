// Bundle the CLI into dist/bundle/ for start-up time; google-auth-library and undici stay external (loaded lazily).
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/entry.ts'],
  outdir: 'dist/bundle',
  // Splitting keeps the entry chunk tiny: --version and --help answer before the rest is even read.
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: ['google-auth-library', 'undici'],
  // yargs and cli-table3 are CommonJS-flavoured in places: give the bundle a require().
  banner: { js: "import { createRequire as __idcallRequire } from 'node:module'; const require = __idcallRequire(import.meta.url);" },
  logLevel: 'warning',
});
