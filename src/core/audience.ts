// The audience a Cloud Run target expects: the URL's origin, no path, no trailing slash, no default port.
import { usageError } from './errors.ts';

/** Normalise an http(s) URL to its origin; anything else (a client id, a custom audience) is left as is. */
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
}

/** Parse the URL a user wants to call; every rejection names the argument. */
export function parseTargetUrl(raw: string, audienceFlag?: string): Target {
  const value = raw.trim();
  if (value === '') throw usageError('URL is empty.', 'Pass the full URL, for example https://hello-abc123-uc.a.run.app/api');
  if (!/^[a-z][a-z0-9+.-]*:/i.test(value)) {
    throw usageError(`URL "${value}" has no scheme.`, `Pass the full URL, for example https://${value.replace(/^\/+/, '')}`);
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
  return { url, audience: audienceFlag !== undefined ? normaliseAudience(audienceFlag) : url.origin };
}
