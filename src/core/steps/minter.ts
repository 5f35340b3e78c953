// Resolve the credential once, then mint ID tokens for any audience: the engine behind the proxy and the library.
import type { Context } from '../context.ts';
import { asIdcallError } from '../errors.ts';
import type { Shadowed, Source, Step } from '../report.ts';
import { runDiscover, runLoad, runMint, StepFailure, type Resolved } from './steps.ts';
import type { SourceOptions } from '../options.ts';
import { TokenCache, type TokenCacheOptions } from './token-cache.ts';

export interface Minter {
  source: Source;
  shadowed: Shadowed[];
  /** The discover and load steps, for a start-up report. */
  steps: Step[];
  /** What is wrong with the credential without stopping it (a key readable by others), each with its fix. */
  warnings: { text: string; fix: string }[];
  /** The context's wall clock, for the cache in front of it. */
  now: () => number;
  mint(audience: string): Promise<string>;
}

export async function createMinter(ctx: Context, options: SourceOptions): Promise<Minter> {
  const steps: Step[] = [];
  let resolved: Resolved;
  try {
    const d = await runDiscover(ctx, options);
    steps.push(d.step);
    const l = await runLoad(ctx, d.discovery, options);
    steps.push(l.step);
    resolved = l.resolved;
  } catch (err) {
    if (err instanceof StepFailure) throw err.error;
    throw err;
  }
  // Who the tokens are for is known for sure only after a first mint (a metadata server, a user file without `account`).
  let source: Source = resolved.source!;
  return {
    get source() {
      return source;
    },
    shadowed: resolved.shadowed,
    steps,
    warnings: resolved.credential?.warnings ?? [],
    now: ctx.now,
    async mint(audience) {
      try {
        const m = await runMint(ctx, resolved, audience, options);
        if (m.minted.principal && !source.principal) source = { ...source, principal: m.minted.principal };
        return m.minted.token;
      } catch (err) {
        if (err instanceof StepFailure) throw err.error;
        throw asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
      }
    },
  };
}

export function cachedMinter(minter: Minter, options: Omit<TokenCacheOptions, 'now'> = {}): TokenCache {
  return new TokenCache((audience) => minter.mint(audience), { now: minter.now, ...options });
}
