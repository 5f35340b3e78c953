// Who may use the proxy and where it may go: the rules docs/security.md explains, each written once.
import { lookup as dnsLookup, promises as dnsPromises, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { buildConnector as BuildConnector } from 'undici';
import { bareHost, embeddedIpv4, isLinkLocal, isLoopback } from '../core/net/addresses.ts';

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
 * Where the forward proxy never goes: a caller who can reach the proxy would get the workload's own access token from
 * the metadata server. Checked twice: by name before connecting (a clear refusal), and by the address a socket
 * actually reached before a byte is sent, so no spelling (`[::ffff:a9fe:a9fe]`, `localhost` for GCE_METADATA_HOST's
 * 127.0.0.1, `0x7f.1`) and no DNS answer gets past it.
 */
export interface DestinationGuard {
  refuses(hostname: string, port: number): boolean;
  /** The connected peer (a socket's remoteAddress and remotePort); an unknown peer is refused. */
  refusesPeer(address: string | undefined, port: number | undefined): boolean;
  /**
   * A dns.lookup that refuses answers the guard refuses for `port`, for sockets that must be stopped before they
   * connect (an HTTP/2 session's, which node:http2 sets up the moment TCP connects). IP literals skip lookups: check
   * them with refusesPeer first.
   */
  lookupFor(port: number): typeof guardedLookup;
}

type ResolveAll = (hostname: string) => Promise<string[]>;
const resolveAll: ResolveAll = async (hostname) => (await dnsPromises.lookup(hostname, { all: true })).map((a) => a.address);

/** `metadataHosts`: GCE_METADATA_HOST / GCE_METADATA_IP values, resolved once (bounded) to the addresses they name. */
export async function destinationGuard(metadataHosts: string[], resolve: ResolveAll = resolveAll, timeoutMs = 1000): Promise<DestinationGuard> {
  const named = metadataHosts.map(parseHostPort).filter((m): m is HostPort => m !== null);
  const endpoints = new Set<string>();
  const key = (address: string, port: number) => `${canonicalAddress(address)} ${port}`;
  await Promise.all(
    named.map(async ({ hostname, port }) => {
      let timer: NodeJS.Timeout | undefined;
      const addresses = isIP(hostname) ? [hostname] : await Promise.race([resolve(hostname).catch(() => []), new Promise<string[]>((r) => (timer = setTimeout(() => r([]), timeoutMs)))]);
      clearTimeout(timer);
      for (const address of addresses) endpoints.add(key(address, port ?? 80));
    }),
  );
  const refusesPeer = (address: string | undefined, port: number | undefined) => address === undefined || port === undefined || isLinkLocal(address) || endpoints.has(key(address, port));
  return {
    refuses(hostname, port) {
      const h = bareHost(hostname);
      return isLinkLocal(h) || named.some((m) => m.hostname === h && (m.port ?? 80) === port) || (isIP(h) !== 0 && endpoints.has(key(h, port)));
    },
    refusesPeer,
    lookupFor: (port) => refusingLookup((address) => refusesPeer(address, port)),
  };
}

/** One spelling per address: IPv4-mapped IPv6 as its IPv4, IPv6 as Node prints it. */
function canonicalAddress(address: string): string {
  const h = bareHost(address);
  const inner = embeddedIpv4(h);
  if (inner?.mapped) return inner.v4;
  return isIP(h) === 6 ? new URL(`http://[${h.split('%')[0]}]`).hostname.slice(1, -1) : h;
}

/** What a client is told when the guard refuses its destination. */
export const METADATA_REFUSED = 'The metadata server and link-local addresses are never reached through the proxy.';

export const forbiddenError = (what: string) => Object.assign(new Error(`${what} is the metadata server or a link-local address; the proxy does not relay there`), { code: 'EIDCALL_FORBIDDEN' });

/** Undici's connector, refusing a connection whose peer the guard refuses before any request is written on it. */
export function guardedConnector(connector: BuildConnector.connector, guard: DestinationGuard): BuildConnector.connector {
  return (opts, callback) =>
    connector(opts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      if (!guard.refusesPeer(socket.remoteAddress, socket.remotePort)) return callback(null, socket);
      socket.destroy();
      callback(forbiddenError(`${opts.hostname}:${opts.port || (opts.protocol === 'https:' ? 443 : 80)}`), null);
    });
}

/** The metadata server's addresses named in the environment (the emulator and GKE set these). */
export function metadataHostsFrom(env: Record<string, string | undefined>): string[] {
  return [env.GCE_METADATA_HOST, env.GCE_METADATA_IP].filter((v): v is string => Boolean(v));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup that fails with EIDCALL_FORBIDDEN when any answer is one `refused` names. */
function refusingLookup(refused: (address: string) => boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void =>
    dnsLookup(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      if (addresses.some(refused)) return callback(forbiddenError(hostname), address, family);
      callback(null, address, family);
    });
}

/**
 * A dns.lookup for upstream sockets that refuses link-local answers: a name that resolves to 169.254.169.254
 * (`metadata` on GCE, or an attacker's DNS) is refused like the literal address.
 */
export const guardedLookup = refusingLookup(isLinkLocal);

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
export function originAccepted(headers: BrowserSignals, listener: Listener, allowOrigins: string[]): boolean {
  return browserAccepted(headers, (origin) => allowOrigins.some((allowed) => sameOrigin(allowed, origin)) || ownOrigin(origin, listener));
}

/**
 * Forward mode, with a browser set to use the proxy: a page of another site must not get the user's token added to a
 * request it makes to an allowed host (`fetch('https://private.run.app/delete', {method: 'POST'})` from any tab).
 * Accepted: no browser signal, the host's own origin (`targets`: the URL as asked and as upgraded), an --allow-origin
 * origin, or Sec-Fetch-Site same-origin / none (typed in the address bar).
 */
export function pageRequestAccepted(headers: BrowserSignals, targets: string[], allowOrigins: string[]): boolean {
  return browserAccepted(headers, (origin) => origin !== 'null' && [...targets, ...allowOrigins].some((allowed) => sameOrigin(allowed, origin)));
}

type BrowserSignals = { origin?: string | string[] | undefined; 'sec-fetch-site'?: string | string[] | undefined };

/** The rule both modes share: an Origin must be one `originOk` accepts (several is none); else Sec-Fetch-Site decides. */
function browserAccepted(headers: BrowserSignals, originOk: (origin: string) => boolean): boolean {
  const origin = typeof headers.origin === 'string' ? headers.origin.trim() : Array.isArray(headers.origin) ? '' : undefined;
  if (origin !== undefined) return originOk(origin);
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
