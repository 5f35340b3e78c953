// The library: the same steps, cache and errors as the CLI, for Node services that call private services.
import { isLoopback } from '../core/net/addresses.ts';
import { defaultAudience, kindFromHost } from '../core/target-kind.ts';
import { defaultContext, type Env } from '../core/context.ts';
import { diagnoseCall } from '../core/diagnosis/call.ts';
import { IdcallError } from '../core/errors.ts';
import { decodeJwtClaims } from '../core/google/jwt.ts';
import { cachedMinter, createMinter, type Minter } from '../core/steps/minter.ts';
import type { CallReport, Source } from '../core/report.ts';
import type { TokenCache } from '../core/steps/token-cache.ts';
import { DEFAULTS, resolveCallSettings, resolveSourceOptions, withEnvironment, type Raw, type SourceOptions, type TokenHeaderName } from '../core/options.ts';
import { placeToken, type TokenHeader } from '../core/net/token-header.ts';
import { fetchKeepingTokenHome } from './redirects.ts';
import type { Dispatcher } from 'undici';

export interface CredentialOptions {
  /** A credential file to use instead of Application Default Credentials discovery. */
  credentials?: string;
  /** Mint as this service account, authorised by whatever credential is found. */
  impersonateServiceAccount?: string;
  delegates?: string[];
  /** Environment to discover credentials from (default: process.env). */
  env?: Env;
  /** Endpoint overrides (Private Service Connect, the emulator). */
  tokenUrl?: string;
  iamUrl?: string;
  stsUrl?: string;
  certsUrl?: string;
  /** Bound for the metadata-server check (default 1000 ms) and for each mint (default 10000 ms). */
  metadataTimeoutMs?: number;
  authTimeoutMs?: number;
}

/** The library's option names as the CLI's flags, so both resolve through core/options.ts. */
const LIBRARY_FLAGS = { boolean: [], array: ['delegates'], key: { credentials: 1, 'impersonate-service-account': 1, delegates: 1, 'token-url': 1, 'iam-url': 1, 'sts-url': 1, 'certs-url': 1, 'metadata-timeout': 1, 'auth-timeout': 1 } };

function flagsOf(o: CredentialOptions): Raw {
  const raw: Raw = {
    credentials: o.credentials,
    'impersonate-service-account': o.impersonateServiceAccount,
    delegates: o.delegates?.length ? o.delegates : undefined,
    'token-url': o.tokenUrl,
    'iam-url': o.iamUrl,
    'sts-url': o.stsUrl,
    'certs-url': o.certsUrl,
    'metadata-timeout': o.metadataTimeoutMs,
    'auth-timeout': o.authTimeoutMs,
  };
  // The same order as the CLI: the option, then IDCALL_* from the environment, then the default.
  return withEnvironment(raw, o.env ?? process.env, LIBRARY_FLAGS);
}

function sourceOptions(o: CredentialOptions): SourceOptions {
  return resolveSourceOptions(flagsOf(o));
}

interface Shared {
  cache: TokenCache;
  /** The minter's identity, read after a mint: who the tokens are for may only be known then. */
  minter: Minter;
}

// One minter and token cache per credential configuration, shared by every getIdToken, idTokenFetch and interceptor
// in the process: two services with different audiences share one cache, one mint per audience.
const shared = new Map<string, Promise<Shared>>();

function sharedFor(o: CredentialOptions): Promise<Shared> {
  const options = sourceOptions(o);
  const env = o.env ?? process.env;
  const key = JSON.stringify([options, env.GOOGLE_APPLICATION_CREDENTIALS, env.CLOUDSDK_CONFIG, env.GCE_METADATA_HOST, env.GCE_METADATA_IP, env.HOME]);
  let entry = shared.get(key);
  if (!entry) {
    entry = createMinter(defaultContext(env), options).then((minter) => ({ cache: cachedMinter(minter), minter }));
    // A failed setup is not cached: the next call tries again (a credential file may appear, a network recover).
    entry.catch(() => shared.delete(key));
    shared.set(key, entry);
  }
  return entry;
}

export interface IdToken {
  token: string;
  claims: Record<string, unknown>;
  source: Source;
}

/** An ID token for `audience` from the cache (single flight, refreshed ahead of expiry). */
export async function getIdToken(options: CredentialOptions & { audience: string }): Promise<IdToken> {
  if (!options.audience) throw new IdcallError('USAGE_ERROR', 'getIdToken needs an audience.', 'Pass { audience: "https://SERVICE-….run.app" }.');
  const { cache, minter } = await sharedFor(options);
  // The audience exactly as given (trimmed): a function URL keeps its path, a client ID is not a URL.
  const { token } = await cache.get(options.audience.trim());
  return { token, claims: decodeJwtClaims(token) ?? {}, source: minter.source };
}

/** The same report as `idcall call URL --json`: every step, the verdict and the fix. */
export async function diagnose(
  url: string,
  options: CredentialOptions & { audience?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; headerName?: TokenHeaderName; timeoutMs?: number; bodyLimit?: number } = {},
): Promise<CallReport> {
  const settings = resolveCallSettings({ url, audience: options.audience, method: options.method, 'header-name': options.headerName, timeout: options.timeoutMs, body: options.bodyLimit }, options.body !== undefined);
  const outcome = await diagnoseCall(defaultContext(options.env ?? process.env), {
    ...sourceOptions(options),
    ...settings,
    headers: Object.entries(options.headers ?? {}),
    ...(options.body !== undefined ? { data: Buffer.from(options.body) } : {}),
  });
  return outcome.report;
}

export interface InjectOptions extends CredentialOptions {
  /**
   * The audience for a request origin (default: the origin, or for a cloudfunctions.net URL the function's URL, as
   * `idcall call` decides). Return null to send no token.
   */
  audience?: (origin: string) => string | null;
  /** Only origins this returns true for get a token (default: every https origin, and http on loopback). */
  allow?: (origin: string) => boolean;
  headerName?: TokenHeaderName;
}

// The rule `call` and the proxy apply: tokens over https, or over plain http only to this machine.
const defaultAllow = (origin: string) => {
  const url = new URL(origin);
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
};

async function tokenForOrigin(options: InjectOptions, url: URL): Promise<string | null> {
  const origin = url.origin;
  if (!(options.allow ?? defaultAllow)(origin)) return null;
  const audience = options.audience ? options.audience(origin) : defaultAudience(url, kindFromHost(url.hostname)).audience;
  if (audience === null) return null;
  const { cache } = await sharedFor(options);
  return (await cache.get(audience.trim())).token;
}

type FetchFn = typeof globalThis.fetch;

/**
 * A fetch-compatible function that adds the right ID token per request origin. Redirects are followed as fetch
 * follows them, but the token goes only to the origin it was minted for (redirects.ts).
 */
export function idTokenFetch(options: InjectOptions & { fetch?: FetchFn } = {}): FetchFn {
  const base = options.fetch ?? globalThis.fetch;
  const header = (options.headerName ?? DEFAULTS.headerName).toLowerCase() as TokenHeader;
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const origin = url.origin;
    const token = await tokenForOrigin(options, url);
    if (!token) return base(request);
    return fetchKeepingTokenHome(base, request, origin, (headers) => {
      const plain: Record<string, string> = {};
      headers.forEach((value, name) => (plain[name] = value));
      const placed = placeToken(plain, header, token);
      if (placed) headers.set(placed, plain[placed]!);
      return placed;
    });
  };
}

/**
 * An undici interceptor: `new Agent().compose(idTokenInterceptor({...}))` adds tokens transparently.
 * Composed with undici's redirect interceptor in either order, the token never follows a redirect to another origin.
 */
export function idTokenInterceptor(options: InjectOptions = {}): Dispatcher.DispatcherComposeInterceptor {
  const header = (options.headerName ?? DEFAULTS.headerName).toLowerCase() as TokenHeader;
  return (dispatch) =>
    function idcallInterceptor(opts, handler) {
      if (opts.origin == null) return dispatch(opts, handler);
      const origin = new URL(String(opts.origin)).origin;
      // The redirect interceptor composed outside this one dispatches every hop through here with its handler, whose
      // history lists the hops so far: a hop away from the first request's origin gets no token.
      const history = (handler as { history?: unknown }).history;
      if (Array.isArray(history) && history.length > 0 && new URL(String(history[0])).origin !== origin) return dispatch(opts, handler);
      tokenForOrigin(options, new URL(String(opts.path ?? '/'), origin)).then(
        (token) => {
          if (!token) return dispatch(opts, handler);
          const headers = headersObject(opts.headers);
          const placed = placeToken(headers, header, token);
          // The redirect interceptor composed inside this one drops the token on a cross-origin hop.
          const strip = [...((opts as { stripHeadersOnCrossOriginRedirect?: string[] }).stripHeadersOnCrossOriginRedirect ?? []), ...(placed ? [placed] : [])];
          dispatch({ ...opts, headers, stripHeadersOnCrossOriginRedirect: strip } as typeof opts, handler);
        },
        (err: Error) => {
          // undici's newer handler API first, the legacy one otherwise (as undici's own dns interceptor does).
          const h = handler as { onResponseError?: (controller: null, err: Error) => void; onError?: (err: Error) => void };
          if (h.onResponseError) h.onResponseError(null, err);
          else h.onError?.(err);
        },
      );
      return true;
    };
}

/** undici accepts headers as an object, a flat [k, v, k, v] array, or pairs: normalise to a lower-cased object. */
function headersObject(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  if (Array.isArray(raw)) {
    if (raw.length && Array.isArray(raw[0])) for (const [k, v] of raw as [string, string][]) out[String(k).toLowerCase()] = String(v);
    else for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
    return out;
  }
  if (typeof (raw as Iterable<unknown>)[Symbol.iterator] === 'function' && !(typeof raw === 'string')) {
    for (const [k, v] of raw as Iterable<[string, string]>) out[String(k).toLowerCase()] = String(v);
    return out;
  }
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

/** For tests and long-running processes that change credentials: forget every cached minter and token. */
export function clearIdTokenCache(): void {
  shared.clear();
}
