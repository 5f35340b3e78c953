// Parsing the URL a user wants to call, and the audience rules that follow from it (target-kind.ts decides by kind).
import { isLoopback } from './net/addresses.ts';
import { usageError } from './errors.ts';
import { describeTarget, type TargetInfo, type TargetKind } from './target-kind.ts';

/** `host:port` or `host:port/path` with no scheme in front. */
const HOST_PORT = /^[\w.-]+:\d+(?:[/?#]|$)/;

/** Whether a command-line word is a URL without its scheme (`127.0.0.1:8080`, `hello-abc.a.run.app/api`). */
export function looksLikeSchemelessUrl(word: string): boolean {
  return HOST_PORT.test(word) || /^(?:[\w-]+\.)+[a-z]{2,}(?::\d+)?(?:[/?#]|$)/i.test(word) || /^\d+\.\d+\.\d+\.\d+(?:[:/]|$)/.test(word);
}

/** Reject what can never carry a token safely: plain http to anything but loopback, unless the user says so. */
export function refusePlainHttp(url: URL, allowInsecure: boolean): void {
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && !allowInsecure) {
    throw usageError(
      `Refusing to send a token over plain http to ${url.host}: anyone on the path could replay it.`,
      'Use the https:// URL, or pass --allow-insecure if this network is trusted (a local proxy, a test host).',
    );
  }
}

/**
 * An http(s) URL's origin; anything else (a client id, a custom audience) as it is. Only for comparing: an audience
 * the user gives is used exactly as given.
 */
export function normaliseAudience(value: string): string {
  const trimmed = value.trim();
  if (!/^https?:\/\//i.test(trimmed)) return trimmed;
  try {
    return new URL(trimmed).origin;
  } catch {
    return trimmed;
  }
}

export interface Target {
  url: URL;
  audience: string;
  target: TargetInfo;
}

/** Parse the URL a user wants to call; every rejection names the argument. */
export function parseTargetUrl(raw: string, audienceFlag?: string, kindFlag?: TargetKind): Target {
  const value = raw.trim();
  if (value === '') throw usageError('URL is empty.', 'Pass the full URL, for example https://hello-abc123-uc.a.run.app/api');
  // `localhost:8080/api` parses as a URL with the scheme "localhost:": a host and port without a scheme is what was meant.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(value) || HOST_PORT.test(value)) {
    const bare = value.replace(/^\/+/, '');
    const host = bare.replace(/^\[([^\]]*)\].*$/, '$1').replace(/[:/?#].*$/, '');
    const scheme = isLoopback(host) ? 'http' : 'https';
    throw usageError(`URL "${value}" has no scheme.`, `Pass the full URL: ${scheme}://${bare}${scheme === 'http' ? ' (plain http is fine for loopback)' : ''}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`URL "${value}" is not a valid URL.`, 'Pass the full URL, for example https://hello-abc123-uc.a.run.app/api');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw usageError(`URL "${value}" uses ${url.protocol.slice(0, -1)}:, but only http and https can carry an ID token.`, 'Use the https:// URL of the service.');
  }
  if (url.username || url.password) {
    throw usageError('URL contains a user name or password; idcall will not send credentials in a URL.', 'Remove the user:password@ part; the ID token is the credential.');
  }
  if (!url.hostname) throw usageError(`URL "${value}" has no host.`, 'Pass the full URL, for example https://hello-abc123-uc.a.run.app/api');
  const target = describeTarget(url, { ...(audienceFlag !== undefined ? { audience: audienceFlag } : {}), ...(kindFlag ? { kind: kindFlag } : {}) });
  return { url, audience: target.audience, target };
}
