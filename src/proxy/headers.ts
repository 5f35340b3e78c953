// RFC 9110 §7.6.1: hop-by-hop headers (and any the Connection header names) are not forwarded.
import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function hopByHop(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Set<string> {
  const connection = headers.connection;
  // The common case (no Connection header, or just keep-alive/close) shares one set: this runs twice per proxied request.
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return HOP_BY_HOP;
  const named = new Set(HOP_BY_HOP);
  for (const value of Array.isArray(connection) ? connection : connection ? [connection] : []) {
    for (const token of String(value).split(',')) {
      const name = token.trim().toLowerCase();
      if (name) named.add(name);
    }
  }
  return named;
}

/**
 * End-to-end headers only, lower-cased, without HTTP/2 pseudo-headers (`:path`…); `keep` re-admits some (an upgrade
 * request must carry Connection and Upgrade). One pass: this runs twice for every proxied request or stream.
 */
export function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, keep: string[] = []): Record<string, string | string[]> {
  let drop = hopByHop(headers);
  if (keep.length) {
    drop = new Set(drop);
    for (const k of keep) drop.delete(k);
  }
  const out: Record<string, string | string[]> = {};
  for (const key in headers) {
    const value = headers[key];
    const name = key.toLowerCase();
    if (value === undefined || name.charCodeAt(0) === 58 /* : */ || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Via (RFC 9110 §7.6.3) with this proxy's entry, `1.1 idcall-<instance>`: the instance name is how a loop is seen. */
export function appendVia(existing: string | string[] | undefined, protocol = '1.1', name = 'idcall'): string {
  const via = `${protocol} ${name}`;
  const prior = Array.isArray(existing) ? existing.join(', ') : existing;
  return prior ? `${prior}, ${via}` : via;
}


/** Whether this proxy instance (`name`) is already in a Via header: the request came round a loop. */
export function viaNames(existing: string | string[] | undefined, name: string): boolean {
  if (existing === undefined) return false;
  const all = Array.isArray(existing) ? existing.join(',') : existing;
  return all.split(',').some((entry) => entry.trim().split(/\s+/)[1] === name);
}
