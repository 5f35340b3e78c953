// Resolve the credential once, then mint ID tokens for any audience: the engine behind the proxy and the library.
import type { Context } from './context.ts';
import { asIdcallError } from './errors.ts';
import type { Shadowed, Source, Step } from './report.ts';
import { runDiscover, runLoad, runMint, StepFailure, type Resolved } from './steps.ts';
import type { SourceOptions } from './options.ts';
import { TokenCache, type TokenCacheOptions } from './token-cache.ts';

export interface Minter {
  source: Source;
  shadowed: Shadowed[];
  /** The discover and load steps, for a start-up report. */
  steps: Step[];
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
  return {
    source: resolved.source!,
    shadowed: resolved.shadowed,
    steps,
    async mint(audience) {
      try {
        const m = await runMint(ctx, resolved, audience, options);
        if (m.minted.principal && !resolved.source!.principal) resolved.source!.principal = m.minted.principal;
        return m.minted.token;
      } catch (err) {
        if (err instanceof StepFailure) throw err.error;
        throw asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
      }
    },
  };
}

export function cachedMinter(minter: Minter, options: TokenCacheOptions = {}): TokenCache {
  return new TokenCache((audience) => minter.mint(audience), options);
}
