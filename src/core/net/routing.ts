// curl's --resolve and --connect-to, and --cacert: reach a real host name at another address (a Private Service
// Connect endpoint, an internal load balancer, the emulator) while the URL, Host header, SNI and audience stay the
// original name. Syntax and meaning are curl's.
import { createRequire } from 'node:module';
import type { buildConnector as BuildConnector } from 'undici';
import { usageError } from '../errors.ts';

export interface Resolve {
  host: string;
  port: number;
  address: string;
}

export interface ConnectTo {
  /** Empty: any host. */
  host: string;
  /** 0: any port. */
  port: number;
  /** Empty: the request's own host (then --resolve may still apply, as in curl). */
  connectHost: string;
  /** 0: the request's own port. */
  connectPort: number;
}

export interface Routing {
  resolve: Resolve[];
  connectTo: ConnectTo[];
  /** Extra trusted CA certificates (PEM), added to the default trust (system roots and NODE_EXTRA_CA_CERTS). */
  ca?: string;
}

const bare = (h: string) => h.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/** `HOST:PORT:ADDR` (an IPv6 ADDR in brackets); curl's list of addresses after it takes the first. */
export function parseResolve(value: string): Resolve {
  const m = /^([^:\s]+):(\d{1,5}):(\[[0-9a-fA-F:.]+\]|[^,\s]+)(?:,.*)?$/.exec(value.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw usageError(`--resolve ${JSON.stringify(value)} is not HOST:PORT:ADDRESS.`, 'Use curl\'s form, e.g. --resolve hello-123.us-central1.run.app:443:10.0.0.5');
  return { host: bare(m[1]!), port, address: bare(m[3]!) };
}

/** `HOST:PORT:CONNECT_HOST:CONNECT_PORT`; an empty HOST or PORT matches any, an empty CONNECT_PORT keeps the port. */
export function parseConnectTo(value: string): ConnectTo {
  const m = /^(\[[^\]]*\]|[^:\s]*):(\d{0,5}):(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{0,5})$/.exec(value.trim());
  const [port, connectPort] = [Number(m?.[2] || 0), Number(m?.[4] || 0)];
  if (!m || port > 65535 || connectPort > 65535) {
    throw usageError(`--connect-to ${JSON.stringify(value)} is not HOST:PORT:CONNECT_HOST:CONNECT_PORT.`, 'Use curl\'s form, e.g. --connect-to hello-123.us-central1.run.app:443:127.0.0.1:8443');
  }
  return { host: bare(m[1]!), port, connectHost: bare(m[3]!), connectPort };
}

/** Where to open the connection for host:port: --connect-to first (curl's order), then --resolve; null for DNS. */
export function route(routing: Routing, host: string, port: number): { host: string; port: number; via: string } | null {
  const h = bare(host);
  const c = routing.connectTo.find((r) => (!r.host || r.host === h) && (!r.port || r.port === port));
  const next = c ? { host: c.connectHost || h, port: c.connectPort || port } : { host: h, port };
  const r = routing.resolve.find((x) => x.host === next.host && x.port === next.port);
  const via = [c ? `--connect-to ${c.host}:${c.port || ''}:${c.connectHost}:${c.connectPort || ''}` : '', r ? `--resolve ${r.host}:${r.port}:${r.address}` : ''].filter(Boolean).join(', ');
  if (!c && !r) return null;
  return { host: r ? r.address : next.host, port: next.port, via };
}

const builtin = createRequire(import.meta.url);

/** The trust for TLS: the default store (system roots, NODE_EXTRA_CA_CERTS) plus --cacert's certificates. */
export function trustWith(extraPem: string | undefined): string[] | undefined {
  if (!extraPem) return undefined;
  // node:tls only now: Google's endpoints over plain node:http (the metadata server) never need it at start-up.
  const tls = builtin('node:tls') as typeof import('node:tls');
  // Passing `ca` replaces Node's default trust, so the default (with NODE_EXTRA_CA_CERTS) is passed along with it.
  const base = typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : [...tls.rootCertificates];
  return [...base, extraPem];
}

/**
 * NODE_EXTRA_CA_CERTS of an environment handed in (tests, a program embedding idcall), when it is not the one this
 * process started with (that one Node applied already).
 */
export function injectedExtraCaFile(env: Record<string, string | undefined>): string | undefined {
  return env.NODE_EXTRA_CA_CERTS && env.NODE_EXTRA_CA_CERTS !== process.env.NODE_EXTRA_CA_CERTS ? env.NODE_EXTRA_CA_CERTS : undefined;
}

/**
 * An undici connector that opens the connection where `routing` says while the Host header, SNI and certificate check
 * stay the request's host name; `onRouted` hears where each connection went. Used for `call` and the proxy's upstreams.
 */
export function routedConnector(build: typeof BuildConnector, options: BuildConnector.BuildOptions, routing: Routing | undefined, onRouted: (via: string) => void = () => {}): BuildConnector.connector {
  const connector = build(options);
  if (!routing || (!routing.connectTo.length && !routing.resolve.length)) return connector;
  return (opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const routed = route(routing, opts.hostname, port);
    if (!routed) return connector(opts, callback);
    onRouted(`connected to ${routed.host}:${routed.port} for ${opts.hostname}:${port} (${routed.via})`);
    return connector({ ...opts, hostname: routed.host, port: String(routed.port), servername: opts.servername || opts.hostname } as typeof opts, callback);
  };
}
