// Connections that leave HTTP: CONNECT tunnels (forward mode, bytes passed through untouched, so no token) and
// upgrades such as WebSocket (the handshake gets the token, then bytes flow both ways).
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { bareHost } from '../core/net/addresses.ts';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { guardedLookup, hostAllowed, METADATA_REFUSED, parseHostPort, type DestinationGuard } from './guards.ts';

export interface TunnelPolicy {
  mode: 'reverse' | 'forward';
  strict: boolean;
  allowHosts: string[];
  /** Forward mode: where tunnels and upgrades never go (the metadata server). */
  guard: DestinationGuard | null;
  /** Bound on reaching the upstream (ms). */
  connectTimeoutMs: number;
  /** Tunnels leave node:http's bookkeeping once they switch protocols: the server ends them itself on close. */
  track: (...sockets: Socket[]) => void;
  /** --intercept-tls: a CONNECT to an allowed host is answered here (TLS terminated, a token added per request). */
  intercept?: (client: Socket, head: Buffer, host: string) => void;
}


const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 421: 'Misdirected Request', 502: 'Bad Gateway', 504: 'Gateway Timeout', 508: 'Loop Detected' };

/** A status line on a socket that is not (or no longer) HTTP-managed, then close it. */
export function rawReply(socket: Socket, status: number, message = ''): void {
  if (socket.destroyed) return;
  const body = message ? JSON.stringify({ error: { message } }) : '';
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export function handleConnect(req: IncomingMessage, client: Socket, head: Buffer, policy: TunnelPolicy): void {
  client.on('error', () => client.destroy());
  const target = parseHostPort(req.url ?? '');
  // CONNECT names host:port (RFC 9110 §9.3.6); a missing or out-of-range port is the client's mistake, not a crash.
  if (!target || target.port === null) return rawReply(client, 400, 'CONNECT needs host:port with a port from 1 to 65535.');
  if (policy.mode === 'reverse') return rawReply(client, 403, 'This is a reverse proxy: CONNECT is not relayed.');
  if (policy.guard?.refuses(target.hostname, target.port)) return rawReply(client, 403, METADATA_REFUSED);
  const allowed = hostAllowed(policy.allowHosts, req.url ?? '');
  if (policy.strict && !allowed) return rawReply(client, 403, `${req.url} is not an allowed host (--allow-host); --strict refuses it.`);
  // Only allowlisted hosts are decrypted; every other tunnel carries the client's bytes untouched.
  if (allowed && policy.intercept) {
    policy.track(client);
    return void client.write('HTTP/1.1 200 Connection Established\r\n\r\n', () => policy.intercept!(client, head, target.hostname));
  }
  const upstream = netConnect({ host: target.hostname, port: target.port, lookup: policy.guard?.lookupFor(target.port) ?? guardedLookup });
  policy.track(client, upstream);
  upstream.setTimeout(policy.connectTimeoutMs, () => {
    rawReply(client, 504, `${req.url} did not accept a connection in time.`);
    upstream.destroy();
  });
  let established = false;
  upstream.once('connect', () => {
    established = true;
    upstream.setTimeout(0);
    if (policy.guard?.refusesPeer(upstream.remoteAddress, upstream.remotePort)) {
      upstream.destroy();
      return rawReply(client, 403, METADATA_REFUSED);
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    // end(), not destroy(): a reset could discard the answer before the client reads it.
    if (!established) return rawReply(client, err.code === 'EIDCALL_FORBIDDEN' ? 403 : 502, err.code === 'EIDCALL_FORBIDDEN' ? METADATA_REFUSED : '');
    client.destroy();
  });
  client.on('close', () => upstream.destroy());
}

export interface UpgradeRoute {
  origin: string;
  path: string;
  headers: Record<string, string | string[]>;
  tls?: ConnectionOptions;
  /** Forward mode: names resolve through the link-local guard, and the address reached is checked before the handshake. */
  guard: DestinationGuard | null;
}

/** Open the upstream connection for an upgrade and splice the two sockets together. */
export function spliceUpgrade(req: IncomingMessage, client: Socket, head: Buffer, route: UpgradeRoute, policy: TunnelPolicy): void {
  const url = new URL(route.origin);
  // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
  const hostname = bareHost(url.hostname);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  let connected = false;
  const onConnect = () => {
    upstream.setTimeout(0);
    // The handshake carries the token: it is written only to an address the guard lets through.
    if (route.guard?.refusesPeer(upstream.remoteAddress, upstream.remotePort)) {
      upstream.destroy();
      return rawReply(client, 403, METADATA_REFUSED);
    }
    connected = true;
    const lines = [`${req.method} ${route.path} HTTP/1.1`, ...Object.entries(route.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`))];
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  };
  const lookup = route.guard ? { lookup: route.guard.lookupFor(port) } : {};
  const upstream =
    url.protocol === 'https:'
      ? tlsConnect({ ...route.tls, host: hostname, port, servername: isIP(hostname) ? undefined : hostname, ...lookup } as ConnectionOptions, onConnect)
      : netConnect({ port, host: hostname, ...lookup }, onConnect);
  policy.track(client, upstream);
  upstream.setTimeout(policy.connectTimeoutMs, () => {
    rawReply(client, 504, `${url.host} did not accept a connection in time.`);
    upstream.destroy();
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    // Before the handshake went out the client can still be told why; after it, only the connection's end says so.
    if (!connected) rawReply(client, err.code === 'EIDCALL_FORBIDDEN' ? 403 : 502, err.code === 'EIDCALL_FORBIDDEN' ? METADATA_REFUSED : '');
    else client.destroy();
  });
  client.on('error', () => upstream.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => connected && client.destroy());
}
