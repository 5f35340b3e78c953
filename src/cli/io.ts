// The streams and environment a command runs with; tests pass their own.
import type { Readable, Writable } from 'node:stream';
import { defaultContext, type Context, type Env } from '../core/context.ts';
import { terminalProgress } from '../render/progress.ts';

export interface IO {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
  env: Env;
  /** Overrides for the core's context (clock, fetch); tests use these. */
  context?: Partial<Context>;
}

export function processIO(): IO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

export function contextFor(io: IO, argv: Record<string, unknown> = {}): Context & { stopProgress: () => void } {
  // Progress never mixes with --json, and only a terminal gets it.
  const progress = argv.json ? undefined : terminalProgress(io.stderr);
  return { ...defaultContext(io.env), ...(progress ? { progress: progress.onStep } : {}), ...io.context, stopProgress: () => progress?.stop() };
}
