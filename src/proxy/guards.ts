// Who may use the proxy and where it may go: the rules docs/security.md explains, each written once.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { bareHost, isLinkLocal, isLoopback } from '../core/net/addresses.ts';

export interface HostPort {
  /** Without brackets: `::1`, `127.0.0.1`, `svc.run.app`. */
  hostname: string;
  port: number | null;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`; null when it is none of these or the port is not 1–65535. */
export function parseHostPort(value: string): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.%]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return null;
  const hostname = (m[1] ?? m[2]!).toLowerCase();
  if (m[1] !== undefined && isIP(hostname) !== 6) return null;
  if (m[3] === undefined) return { hostname, port: null };
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { hostname, port } : null;
}

/** `*` any host; `*.run.app` any subdomain of run.app; `host` or `[v6]` any port of it; `host:port` exactly. */
export function hostAllowed(patterns: string[], host: string): boolean {
  const target = parseHostPort(host);
  if (!target) return false;
  return patterns.some((raw) => {
    const p = raw.trim().toLowerCase();
    if (p === '*') return true;
    if (p.startsWith('*.')) return target.hostname.endsWith(p.slice(1)) && target.hostname.length > p.length - 1;
    const pattern = parseHostPort(p);
    if (!pattern || pattern.hostname !== target.hostname) return false;
    return pattern.port === null || pattern.port === target.port;
  });
}

/**
 * Destinations the forward proxy never relays to: a caller who can reach the proxy would get the workload's own
 * access token from the metadata server. `metadataHosts` are GCE_METADATA_HOST / GCE_METADATA_IP values.
 */
export function forbiddenDestination(hostname: string, port: number, metadataHosts: string[]): boolean {
  const h = bareHost(hostname);
  if (isLinkLocal(h)) return true;
  return metadataHosts.some((value) => {
    const m = parseHostPort(value);
    return m !== null && m.hostname === h && (m.port ?? 80) === port;
  });
}

/** The metadata server's addresses named in the environment (the emulator and GKE set these). */
export function metadataHostsFrom(env: Record<string, string | undefined>): string[] {
  return [env.GCE_METADATA_HOST, env.GCE_METADATA_IP].filter((v): v is string => Boolean(v));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup for upstream sockets that refuses link-local answers: a name that resolves to 169.254.169.254
 * (`metadata` on GCE, or an attacker's DNS) is refused like the literal address.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, options, (err, address, family) => {
    if (err) return callback(err, address, family);
    const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
    if (addresses.some(isLinkLocal)) {
      const refused = Object.assign(new Error(`${hostname} resolves to a link-local (metadata) address; the proxy does not relay there`), { code: 'EIDCALL_FORBIDDEN' });
      return callback(refused, address, family);
    }
    callback(null, address, family);
  });
}

export interface Listener {
  /** The address the server is bound to (no brackets). */
  address: string;
  port: number;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/**
 * Reverse mode answers only requests addressed to it: a page that rebinds its own DNS name to 127.0.0.1 sends
 * `Host: attacker.example:PORT`, which no legitimate client does. IP literals are always fine on a wildcard listener.
 */
export function hostHeaderAccepted(host: string | undefined, listener: Listener): boolean {
  if (host === undefined || host === '') return true; // HTTP/1.0 clients; browsers always send Host
  const parsed = parseHostPort(host);
  if (!parsed) return false;
  if ((parsed.port ?? 80) !== listener.port) return false;
  if (isLoopback(parsed.hostname)) return true;
  if (parsed.hostname === listener.address.toLowerCase()) return true;
  return WILDCARD.has(listener.address) && isIP(parsed.hostname) !== 0;
}

/**
 * A browser request from another page carries Origin (or, for simple GETs, only Sec-Fetch-Site); requests from
 * non-browser clients carry neither. Accepted: no browser signal, this proxy's own origin, an --allow-origin origin,
 * or Sec-Fetch-Site same-origin / none (the user typed the URL). Everything else is a page driving the proxy.
 */
export function originAccepted(headers: { origin?: string | string[] | undefined; 'sec-fetch-site'?: string | string[] | undefined }, listener: Listener, allowOrigins: string[]): boolean {
  const origin = typeof headers.origin === 'string' ? headers.origin.trim() : Array.isArray(headers.origin) ? '' : undefined;
  if (origin !== undefined) return allowOrigins.some((allowed) => sameOrigin(allowed, origin)) || ownOrigin(origin, listener);
  const site = headers['sec-fetch-site'];
  if (site === undefined) return true;
  const value = String(site).trim().toLowerCase();
  return value === 'same-origin' || value === 'none';
}

function ownOrigin(origin: string, listener: Listener): boolean {
  if (origin === 'null') return false; // sandboxed frames, file: pages
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && url.origin === origin.replace(/\/$/, '') && hostHeaderAccepted(url.host || undefined, listener) && Number(url.port || 80) === listener.port;
  } catch {
    return false;
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return a === b;
  }
}
