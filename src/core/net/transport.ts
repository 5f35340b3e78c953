// The transport under every Google client: it routes Google's default endpoints to the configured ones,
// bounds every request, and records each exchange (without secrets) for the report.

import type { HttpClient, HttpInit, HttpResponse } from './http.ts';
import { displayProxy } from './proxy-env.ts';
import { GOOGLE_IAM_URL, GOOGLE_LEGACY_TOKEN_URL, GOOGLE_STS_URL, GOOGLE_TOKEN_URL, type Endpoints } from '../endpoints.ts';

export interface Exchange {
  method: string;
  /** URL with query values that could be secrets removed. */
  url: string;
  status?: number;
  durationMs: number;
  /** Network-level failure (refused, reset, timeout), when there was no response. */
  error?: string;
  /** Google's error code and message from the body, in either dialect. */
  googleError?: GoogleError;
  /** Response Date header: Google's clock, for skew detection. */
  date?: string;
  /** The proxy the request went through (HTTPS_PROXY/HTTP_PROXY), without credentials. */
  proxy?: string;
}

export interface GoogleError {
  code: string;
  message: string;
  /** OAuth `error_subtype` (invalid_rapt, rapt_required) or API ErrorInfo reason. */
  subtype?: string;
}

export interface RecordingOptions {
  endpoints?: Endpoints;
  /** Upper bound for one request, including reading the body. */
  timeoutMs: number;
  /** Aborts everything when the command's overall deadline passes. */
  signal?: AbortSignal;
  exchanges: Exchange[];
  base: HttpClient;
  /** Monotonic clock in ms (the context's `monotonic`): durations and the retry deadline. */
  now: () => number;
  /** Retry 5xx, 429, 408 and connection resets (never 4xx), with jittered backoff, while time is left (`deadline` on `now`'s clock). */
  retry?: { attempts: number; deadline: number };
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** Exponential backoff with full jitter (100 ms base), or Retry-After when the server gives one. */
export function backoffMs(attempt: number, retryAfter: string | null, random = Math.random): number {
  const seconds = retryAfter !== null ? Number(retryAfter) : NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  return Math.round(random() * 100 * 2 ** attempt);
}

export function route(url: string, endpoints: Endpoints = {}): string {
  if (endpoints.token && (url === GOOGLE_TOKEN_URL || url === GOOGLE_LEGACY_TOKEN_URL)) return endpoints.token;
  if (endpoints.sts && url === GOOGLE_STS_URL) return endpoints.sts;
  if (endpoints.iam && url.startsWith(GOOGLE_IAM_URL + '/')) return endpoints.iam.replace(/\/$/, '') + url.slice(GOOGLE_IAM_URL.length);
  return url;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    for (const key of [...parsed.searchParams.keys()]) {
      if (/token|secret|key|assertion|code|signature|sig/i.test(key)) parsed.searchParams.set(key, 'REDACTED');
    }
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The client every Google exchange goes through: routed, bounded, retried within the deadline, and recorded. */
export function createRecordingClient(options: RecordingOptions): HttpClient {
  const now = options.now;
  const once = async (url: string, init: HttpInit, method: string): Promise<{ response?: HttpResponse; error?: unknown; exchange: Exchange }> => {
    const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : []), ...(init.signal ? [init.signal] : [])];
    const started = now();
    const exchange: Exchange = { method, url: redactUrl(url), durationMs: 0 };
    const proxy = init.direct ? undefined : options.base.proxyFor?.(url);
    if (proxy) exchange.proxy = displayProxy(proxy);
    options.exchanges.push(exchange);
    try {
      const response = await options.base(url, { ...init, method, signal: AbortSignal.any(signals) });
      exchange.durationMs = Math.round(now() - started);
      exchange.status = response.status;
      const date = response.headers.get('date');
      if (date) exchange.date = date;
      if (response.status >= 400) {
        const googleError = parseGoogleError(response.text());
        if (googleError) exchange.googleError = googleError;
      }
      return { exchange, response };
    } catch (err) {
      exchange.durationMs = Math.round(now() - started);
      exchange.error = describeNetworkError(err, options.timeoutMs);
      return { exchange, error: err };
    }
  };
  return async (original, init = {}) => {
    const url = route(original, options.endpoints);
    const method = (init.method ?? 'GET').toUpperCase();
    for (let attempt = 0; ; attempt++) {
      const { response, error, exchange } = await once(url, init, method);
      const retriable = response ? RETRY_STATUS.has(response.status) : exchange.error === 'connection reset';
      const wait = backoffMs(attempt, response?.headers.get('retry-after') ?? null);
      const retry = options.retry && retriable && attempt + 1 < options.retry.attempts && now() + wait + 50 < options.retry.deadline && !options.signal?.aborted;
      if (!retry) {
        if (response) return response;
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
}

/** Google's two error dialects: OAuth `{error, error_description}` and API `{error: {status, message}}`. */
function parseGoogleError(text: string): GoogleError | undefined {
  try {
    const body = JSON.parse(text);
    if (typeof body?.error === 'string') {
      return { code: body.error, message: String(body.error_description ?? ''), ...(typeof body.error_subtype === 'string' ? { subtype: body.error_subtype } : {}) };
    }
    if (typeof body?.error === 'object' && body.error !== null) {
      const reason = Array.isArray(body.error.details) ? body.error.details.find((d: { reason?: unknown }) => typeof d?.reason === 'string')?.reason : undefined;
      return { code: String(body.error.status ?? body.error.code ?? ''), message: String(body.error.message ?? ''), ...(reason ? { subtype: reason } : {}) };
    }
    if (typeof body?.error_description === 'string') return { code: '', message: body.error_description };
  } catch {
    // not JSON: a captive portal, a proxy page, garbage
  }
  return undefined;
}

/** A request that ran out of its time (ours, the connect timeout, or the kernel's). */
export function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: { code?: string } } | undefined;
  return e?.name === 'TimeoutError' || e?.cause?.code === 'UND_ERR_CONNECT_TIMEOUT' || e?.code === 'ETIMEDOUT';
}

export function describeNetworkError(err: unknown, timeoutMs?: number): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; message?: string }; message?: string };
  if (isTimeout(err)) return `timed out${timeoutMs ? ` after ${timeoutMs} ms` : ''}`;
  if (e?.name === 'AbortError') return 'aborted: the overall time limit was reached';
  const code = e?.cause?.code ?? e?.code;
  // Node's message names the proxy without its credentials and ends with the proxy's status line.
  // The message of whichever error carries the code: node:http2 wraps ours as the cause of a cancelled stream.
  const own = e?.cause?.code === code ? e.cause?.message : e?.message;
  if (code === 'ERR_PROXY_TUNNEL') return `the proxy refused the tunnel (${/: ([^:]+)$/.exec(own ?? '')?.[1]?.trim() ?? 'no reason given'})`;
  if (code === 'ERR_PROXY_UNSUPPORTED') return e?.message ?? code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found (DNS)';
  if (code) return `${code}${e?.cause?.message ? `: ${e.cause.message}` : ''}`;
  return e?.message ?? String(err);
}

/** Whether a connection failed on the peer's certificate (an error code or message): the proxy's TLS_ERROR. */
export function isCertificateFailure(text: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|ERR_TLS|certificate/i.test(text);
}
