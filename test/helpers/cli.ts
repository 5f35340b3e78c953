// Run idcall in-process with captured streams and an explicit environment, as a user would see it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import type { Context } from '../../src/core/context.ts';
import { issuedSecrets } from '../../src/emulator/index.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Where a raw token is the point of the command (`idcall token` stdout, `--show-token` stderr). */
  tokenAllowedOn?: 'stdout' | 'stderr';
}

/**
 * Run idcall; every run is a secret canary: nothing any emulator in this process issued (tokens, private keys,
 * refresh tokens, client secrets) may appear in what the user sees.
 */
export async function idcall(args: string[], env: Record<string, string | undefined>, context: Partial<Context> = {}, options: RunOptions = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c) => out.push(c));
  stderr.on('data', (c) => err.push(c));
  const t0 = performance.now();
  const code = await run(args, { stdout, stderr, stdin: new PassThrough(), env, context });
  const result = { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 };
  const scanned = [options.tokenAllowedOn === 'stdout' ? '' : result.stdout, options.tokenAllowedOn === 'stderr' ? '' : result.stderr];
  assertNoSecrets(scanned, issuedSecrets());
  return result;
}

/** A clean environment: no credentials anywhere unless the test adds them, metadata pointed at `metadataHost`. */
export function cleanEnv(home: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { HOME: home, PATH: process.env.PATH, ...extra };
}

/** A server that accepts connections and never answers: what the metadata address is off Google Cloud behind some firewalls. */
export async function blackhole(): Promise<{ host: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export async function tempDir(): Promise<{ path: string; file(name: string, content: string | object, mode?: number): Promise<string>; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'idcall-test-'));
  return {
    path,
    async file(name, content, mode = 0o600) {
      const p = join(path, name);
      await writeFile(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2), { mode });
      return p;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

/** Fail if any secret the emulator issued shows up in what the user saw. */
export function assertNoSecrets(texts: string[], secrets: string[]): void {
  for (const text of texts) {
    for (const secret of secrets) {
      const probe = secret.includes('PRIVATE KEY') ? secret.split('\n')[1]! : secret;
      assert.ok(!text.includes(probe), `a secret (${probe.slice(0, 12)}…) leaked into output`);
      assert.ok(!text.includes(JSON.stringify(probe).slice(1, -1)), `a secret (${probe.slice(0, 12)}…) leaked into output (escaped)`);
      assert.ok(!text.includes(encodeURIComponent(probe)), `a secret (${probe.slice(0, 12)}…) leaked into output (percent-encoded)`);
    }
  }
}

export function json(result: CliResult): any {
  try {
    return JSON.parse(result.stdout);
  } catch {
    assert.fail(`stdout is not one JSON document:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

export interface EmulatorFixture {
  readonly emu: import('../../src/emulator/index.ts').Emulator;
  readonly creds: import('../../src/emulator/index.ts').WrittenCredentials;
  readonly dir: Awaited<ReturnType<typeof tempDir>>;
}

/** One emulator, a temp dir and its credential files for a test file; started before the tests and closed after. */
export function emulatorFixture(scenario?: Partial<import('../../src/emulator/index.ts').Scenario>, setup?: (fx: EmulatorFixture) => Promise<void> | void): EmulatorFixture {
  const state = {} as { emu: EmulatorFixture['emu']; creds: EmulatorFixture['creds']; dir: EmulatorFixture['dir'] };
  before(async () => {
    const { startEmulator } = await import('../../src/emulator/index.ts');
    state.emu = await startEmulator(scenario);
    state.dir = await tempDir();
    state.creds = await state.emu.writeCredentials(state.dir.path);
    // In this hook, not a later one: hooks of one file are not guaranteed to see each other's results in order.
    await setup?.(state);
  });
  after(async () => {
    await state.emu?.close();
    await state.dir?.remove();
  });
  return state;
}
