// Which requests the proxy serves and where each goes: reverse mode admits only requests addressed to it by clients
// that are not someone else's web page; forward mode refuses loops, the metadata server and, with --strict, hosts off
// the allowlist, and refuses to lend the token to another site's page. Each rule's check lives in guards.ts.
import type { IncomingMessage } from 'node:http';
import { defaultAudience, kindFromHost } from '../core/target-kind.ts';
import { hostAllowed, hostHeaderAccepted, METADATA_REFUSED, originAccepted, pageRequestAccepted, type DestinationGuard, type Listener } from './guards.ts';
import { viaNames } from './headers.ts';

export interface Route {
  origin: string;
  path: string;
  host: string;
  /** null: pass through without a token. */
  audience: string | null;
}

export interface Refusal {
  error: number;
  code: string;
  message: string;
}

export interface RouterOptions {
  mode: 'reverse' | 'forward';
  target?: URL | undefined;
  audience?: string | undefined;
  allowHosts: string[];
  strict: boolean;
  upgradeHttp: boolean;
  allowOrigins: string[];
  /** Forward mode's destination guard (null in reverse mode). */
  guard: DestinationGuard | null;
  /** This proxy's name in Via. */
  viaName: string;
  /** The address it listens on, known once listening. */
  listener: Listener;
}

type BrowserHeaders = { host?: string | undefined; origin?: string | string[] | undefined; 'sec-fetch-site'?: string | string[] | undefined };

export function createRouter(options: RouterOptions) {
  const { guard, viaName, listener, allowOrigins } = options;
  /** Reverse mode serves only requests addressed to it by clients that are not someone else's web page. */
  // Clients send the same Host on every request: the last one admitted without browser headers is remembered.
  let admittedHost: string | undefined;
  const admit = (headers: BrowserHeaders): Refusal | null => {
    if (options.mode !== 'reverse') return null;
    const plain = headers.origin === undefined && headers['sec-fetch-site'] === undefined;
    if (plain && headers.host !== undefined && headers.host === admittedHost) return null;
    if (!hostHeaderAccepted(headers.host, listener)) return { error: 421, code: 'USAGE_ERROR', message: `Host ${JSON.stringify(headers.host)} is not this proxy's address (${listener.address}:${listener.port} or localhost): refused, as a DNS-rebinding page would be.` };
    if (!originAccepted(headers, listener, allowOrigins)) return { error: 403, code: 'USAGE_ERROR', message: `A request from the web page ${typeof headers.origin === 'string' ? headers.origin : '(cross-site)'} was refused: pages may use the proxy only if --allow-origin names their origin.` };
    if (plain) admittedHost = headers.host;
    return null;
  };

  const pageRefusal = (origin: string | string[] | undefined, host: string): Refusal => ({
    error: 403,
    code: 'USAGE_ERROR',
    message: `A request from the web page ${typeof origin === 'string' ? origin : '(another site)'} to ${host} was refused: the proxy adds your token only to requests of that host's own pages and of clients that are not browsers (--allow-origin names other pages).`,
  });

  const route = (req: IncomingMessage): Route | Refusal => {
    const raw = req.url ?? '/';
    if (viaNames(req.headers.via, viaName)) return { error: 508, code: 'USAGE_ERROR', message: 'Loop detected: this request already passed through this proxy (HTTP_PROXY points back at it).' };
    if (options.mode === 'reverse') {
      const refused = admit(req.headers);
      if (refused) return refused;
      const target = options.target!;
      const basePath = target.pathname.replace(/\/$/, '');
      return { origin: target.origin, path: basePath + (raw.startsWith('/') ? raw : `/${raw}`), host: target.host, audience: options.audience ?? target.origin };
    }
    if (raw.startsWith('/')) return { error: 400, code: 'USAGE_ERROR', message: 'This is a forward proxy: send absolute-form requests (set HTTP_PROXY to this address).' };
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { error: 400, code: 'USAGE_ERROR', message: 'Malformed request target.' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { error: 400, code: 'USAGE_ERROR', message: `Unsupported scheme ${url.protocol}` };
    if (guard?.refuses(url.hostname, Number(url.port || (url.protocol === 'https:' ? 443 : 80)))) {
      return { error: 403, code: 'USAGE_ERROR', message: METADATA_REFUSED };
    }
    const allowed = hostAllowed(options.allowHosts, url.host);
    if (!allowed && options.strict) return { error: 403, code: 'USAGE_ERROR', message: `${url.host} is not an allowed host (--allow-host); --strict refuses it.` };
    const upgraded = allowed && options.upgradeHttp && url.protocol === 'http:' ? new URL(`https://${url.hostname}${url.port && url.port !== '80' ? `:${url.port}` : ''}`) : url;
    if (allowed && !pageRequestAccepted(req.headers, [url.origin, upgraded.origin], allowOrigins)) return pageRefusal(req.headers.origin, url.host);
    // Each host is its own audience, by the same rule as `call` (a cloudfunctions.net URL keeps its function's name).
    const audience = allowed ? defaultAudience(new URL(url.pathname, upgraded.origin), kindFromHost(upgraded.hostname)).audience : null;
    return { origin: upgraded.origin, path: url.pathname + url.search, host: upgraded.host, audience };
  };

  return { admit, route, pageRefusal };
}
