// Everything a command touches in the outside world, passed in so tests drive it with real local servers.
import { createNodeHttp, type HttpClient } from './net/http.ts';

export type Env = Record<string, string | undefined>;

export interface Context {
  env: Env;
  /** Home directory used for the gcloud well-known file (HOME, or USERPROFILE on Windows). */
  homedir: string;
  platform: NodeJS.Platform;
  cwd: string;
  /** Wall clock in ms since the epoch (token expiry, skew). */
  now: () => number;
  /** Monotonic clock in ms (durations). */
  monotonic: () => number;
  /** HTTP to Google's endpoints; the recording client wraps it. */
  http: HttpClient;
  /** Aborted when the command's overall deadline passes. */
  signal?: AbortSignal;
  /** Told when a step starts and ends, so a terminal can show progress; the core itself never prints. */
  progress?: (step: string, phase: 'start' | 'end') => void;
}

export function defaultContext(env: Env = process.env): Context {
  return {
    env,
    homedir: env.HOME ?? env.USERPROFILE ?? '',
    platform: process.platform,
    cwd: process.cwd(),
    now: Date.now,
    monotonic: () => performance.now(),
    http: createNodeHttp(env),
  };
}

/** Time a piece of work with the context's monotonic clock. */
export async function timed<T>(ctx: Pick<Context, 'monotonic'>, work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = ctx.monotonic();
  const value = await work();
  return { value, ms: Math.round(ctx.monotonic() - start) };
}
