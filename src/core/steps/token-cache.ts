// One ID token per audience, shared by every concurrent caller: a single in-flight mint per audience,
// refreshed in the background ahead of expiry so that warm callers never wait. Bounded: at most `maxEntries`
// audiences (least recently used dropped first), and a failed mint is not retried for a few seconds, so a broken
// credential, or a client naming thousands of hosts, cannot make the proxy hammer Google.
import { decodeJwtClaims } from '../google/jwt.ts';

export type CacheResult = 'hit' | 'miss' | 'refresh';

export interface CachedToken {
  token: string;
  /** Expiry in ms since the epoch, from the token's exp claim. */
  expiresAt: number;
}

export interface TokenCacheOptions {
  /** Wall clock (ms). */
  /** Wall clock in ms (the context's `now`): token expiry is wall-clock time. */
  now: () => number;
  /** Start a background refresh when this fraction of the lifetime is left (default 0.25, at most 5 min before expiry). */
  refreshFraction?: number;
  /** A token with less than this left is not handed out (default 10 s): it could expire in flight. */
  safetyMs?: number;
  /** Told about background refresh failures (the old token keeps being served until it expires). */
  onRefreshError?: (audience: string, err: unknown) => void;
  /** Audiences kept (default DEFAULT_MAX_AUDIENCES); the least recently used is dropped beyond it. */
  maxEntries?: number;
  /** After a failed mint, callers get the same error without a new mint for this long (default 2 s), doubling per
   * consecutive failure up to `maxFailureBackoffMs` (default 30 s). */
  failureBackoffMs?: number;
  maxFailureBackoffMs?: number;
}

export const DEFAULT_MAX_AUDIENCES = 1000;

interface Entry {
  current?: CachedToken;
  issuedAt?: number;
  inflight?: Promise<CachedToken>;
  failure?: { error: unknown; until: number; backoffMs: number };
  /** Recency for eviction: a counter, so the hot path writes one number instead of reordering a Map. */
  used: number;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly refreshFraction: number;
  private readonly safetyMs: number;
  private readonly mint: (audience: string) => Promise<string>;
  private readonly onRefreshError: (audience: string, err: unknown) => void;
  private readonly maxEntries: number;
  private uses = 0;
  private readonly failureBackoffMs: number;
  private readonly maxFailureBackoffMs: number;

  constructor(mint: (audience: string) => Promise<string>, options: TokenCacheOptions) {
    this.mint = mint;
    this.now = options.now;
    this.refreshFraction = options.refreshFraction ?? 0.25;
    this.safetyMs = options.safetyMs ?? 10_000;
    this.onRefreshError = options.onRefreshError ?? (() => {});
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_AUDIENCES);
    this.failureBackoffMs = options.failureBackoffMs ?? 2000;
    this.maxFailureBackoffMs = options.maxFailureBackoffMs ?? 30_000;
  }

  /** How many audiences are cached. */
  get size(): number {
    return this.entries.size;
  }

  async get(audience: string): Promise<{ token: string; result: CacheResult }> {
    const warm = this.getCached(audience);
    if (warm) return warm;
    const entry = this.entry(audience);
    const current = entry.current;
    if (!entry.inflight && this.backingOff(entry, this.now())) throw entry.failure!.error;
    const pending = entry.inflight ?? this.start(audience, entry);
    const fresh = await pending;
    return { token: fresh.token, result: current ? 'refresh' : 'miss' };
  }

  /** The hot path: a usable cached token without awaiting anything (starting a background refresh when due), or undefined. */
  getCached(audience: string): { token: string; result: CacheResult } | undefined {
    const entry = this.entry(audience);
    const now = this.now();
    const current = entry.current;
    const lifetime = current ? current.expiresAt - (entry.issuedAt ?? now) : 0;
    // Short-lived tokens (tests, custom lifetimes) scale the margin down with them.
    if (current && current.expiresAt - now > Math.min(this.safetyMs, lifetime * 0.1)) {
      const refreshAt = current.expiresAt - Math.min(lifetime * this.refreshFraction, 5 * 60_000);
      if (now >= refreshAt && !entry.inflight && !this.backingOff(entry, now)) {
        this.start(audience, entry).catch((err) => this.onRefreshError(audience, err));
        return { token: current.token, result: 'refresh' };
      }
      return { token: current.token, result: 'hit' };
    }
    return undefined;
  }

  /** Drop `token` if it is still the cached one (an upstream said 401 to it); the next get() mints. */
  invalidate(audience: string, token: string): void {
    const entry = this.entries.get(audience);
    if (entry?.current?.token === token) delete entry.current;
  }

  peek(audience: string): CachedToken | undefined {
    return this.entries.get(audience)?.current;
  }

  private entry(audience: string): Entry {
    let entry = this.entries.get(audience);
    if (entry) {
      entry.used = ++this.uses;
      return entry;
    }
    this.entries.set(audience, (entry = { used: ++this.uses }));
    if (this.entries.size > this.maxEntries) this.evict(entry);
    return entry;
  }

  /** Drop the least recently used audiences (never one being minted) until the cache fits. */
  private evict(keep: Entry): void {
    // One linear scan per eviction, no sort: a client naming a new host per request must not cost n log n each time.
    while (this.entries.size > this.maxEntries) {
      let oldest: string | undefined;
      let oldestUse = Infinity;
      for (const [name, e] of this.entries) if (e !== keep && !e.inflight && e.used < oldestUse) [oldest, oldestUse] = [name, e.used];
      if (oldest === undefined) return; // everything else is being minted right now
      this.entries.delete(oldest);
    }
  }

  private backingOff(entry: Entry, now: number): boolean {
    return entry.failure !== undefined && now < entry.failure.until;
  }

  private start(audience: string, entry: Entry): Promise<CachedToken> {
    const startedAt = this.now();
    const inflight = this.mint(audience).then(
      (token) => {
        const claims = decodeJwtClaims(token);
        const fresh = { token, expiresAt: typeof claims?.exp === 'number' ? claims.exp * 1000 : startedAt + 3_600_000 };
        entry.current = fresh;
        // The metadata server hands out cached tokens part-way through their life: measure from iat.
        entry.issuedAt = typeof claims?.iat === 'number' ? Math.min(claims.iat * 1000, startedAt) : startedAt;
        entry.inflight = undefined;
        entry.failure = undefined;
        return fresh;
      },
      (err: unknown) => {
        entry.inflight = undefined;
        const backoffMs = entry.failure ? Math.min(entry.failure.backoffMs * 2, this.maxFailureBackoffMs) : this.failureBackoffMs;
        entry.failure = { error: err, until: this.now() + backoffMs, backoffMs };
        throw err;
      },
    );
    entry.inflight = inflight;
    return inflight;
  }
}
