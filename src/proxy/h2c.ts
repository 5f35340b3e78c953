// HTTP/2 cleartext with prior knowledge (how gRPC clients talk to a local port), on the same port as HTTP/1.1
// (h2c-listener.ts tells the two apart).
// Streams go upstream over HTTP/2 (TLS with ALPN for https targets, h2c for http ones) with the token added,
// trailers included, so gRPC works end to end. Reverse mode only: gRPC clients reach proxies with CONNECT.
import {
  connect as http2Connect,
  constants,
  createServer as createHttp2Server,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Server } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import { asIdcallError } from '../core/errors.ts';
import type { CacheResult, TokenCache } from '../core/token-cache.ts';
import { describeNetworkError } from '../core/transport.ts';
import { appendVia, endToEnd, placeToken, viaNames, type TokenHeader } from './headers.ts';
import { shareWithH2c } from './h2c-listener.ts';

export interface H2cOptions {
  target: URL;
  audience: string;
  cache: TokenCache;
  tokenHeader: TokenHeader;
  upstreamTimeoutMs: number;
  /** This proxy's name in Via. */
  viaName: string;
  /** The reverse proxy's admission rules (Host, Origin); a refusal is answered without a token. */
  admit: (headers: IncomingHttpHeaders) => { error: number; code: string; message: string } | null;
  /** TLS settings for https upstreams (tests use a private CA). */
  tls?: ConnectionOptions;
  onExchange: (entry: { method: string; path: string; status: number; upstreamMs: number | null; token: CacheResult | 'client' | 'none'; error?: string }) => void;
}

export interface H2c {
  close(): void;
}

/** Route connections that open with the HTTP/2 preface on `server`'s port to an HTTP/2 proxy. */
export function acceptH2c(server: Server, options: H2cOptions): H2c {
  const h2 = createHttp2Server();
  const sessions = new Set<ServerHttp2Session | ClientHttp2Session>();
  const track = (session: ServerHttp2Session | ClientHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  };
  h2.on('session', track);
  h2.on('stream', (stream, headers) => {
    // A client's RST_STREAM with an error code surfaces as 'error' on the stream: the stream's end, not the process's.
    stream.on('error', () => {});
    void proxyStream(stream, headers, options, upstreamFor).catch(() => stream.destroyed || stream.close(constants.NGHTTP2_INTERNAL_ERROR));
  });
  h2.on('sessionError', () => {});

  const upstreams = new Map<string, ClientHttp2Session>();
  const upstreamFor = (): ClientHttp2Session => {
    const origin = options.target.origin;
    const existing = upstreams.get(origin);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const session = http2Connect(origin, options.target.protocol === 'https:' ? { ...options.tls, servername: options.target.hostname } : {});
    session.on('error', () => {}); // each stream reports its own failure
    session.once('close', () => upstreams.get(origin) === session && upstreams.delete(origin));
    session.unref();
    upstreams.set(origin, session);
    track(session);
    return session;
  };

  const listener = shareWithH2c(server, h2);

  return {
    close() {
      listener.close();
      for (const session of sessions) session.close();
      setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, 1000).unref();
    },
  };
}

const isGrpc = (headers: IncomingHttpHeaders) => String(headers['content-type'] ?? '').startsWith('application/grpc');

async function proxyStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: H2cOptions, upstreamFor: () => ClientHttp2Session): Promise<void> {
  const started = performance.now();
  const method = String(headers[':method'] ?? 'GET');
  const localPath = String(headers[':path'] ?? '/');
  const basePath = options.target.pathname.replace(/\/$/, '');
  const path = basePath + (localPath.startsWith('/') ? localPath : `/${localPath}`);
  const grpc = isGrpc(headers);
  const report = (status: number, token: CacheResult | 'client' | 'none', upstreamMs: number | null, error?: string) =>
    options.onExchange({ method, path: path.split('?')[0]!, status, upstreamMs, token, ...(error ? { error } : {}) });
  // gRPC clients read failures from grpc-status, not the HTTP status: answer them in their terms.
  const fail = (status: number, grpcStatus: number, code: string, message: string, fix: string) => {
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) return void stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    if (grpc) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': encodeURIComponent(`${code}: ${message}`), 'x-idcall-proxy': 'error' }, { endStream: true });
    } else {
      stream.respond({ ':status': status, 'content-type': 'application/json', 'x-idcall-proxy': 'error' });
      stream.end(JSON.stringify({ error: { code, message, fix, audience: options.audience } }));
    }
  };

  const refused = options.admit(headers);
  if (refused) {
    stream.resume();
    fail(refused.error, 7 /* PERMISSION_DENIED */, refused.code, refused.message, '');
    return report(grpc ? 200 : refused.error, 'none', null, refused.code);
  }
  if (viaNames(headers.via, options.viaName)) {
    stream.resume();
    fail(508, 14 /* UNAVAILABLE */, 'USAGE_ERROR', 'Loop detected: this request already passed through this proxy.', '');
    return report(grpc ? 200 : 508, 'none', null, 'loop');
  }
  const forwarded: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(endToEnd(headers))) if (!name.startsWith(':')) forwarded[name] = value;
  // HTTP/2 admits TE only as "trailers", which gRPC requires.
  if (String(headers.te ?? '').includes('trailers')) forwarded.te = 'trailers';
  forwarded.via = appendVia(headers.via, '2', options.viaName);
  let token: CacheResult | 'client';
  try {
    const got = options.cache.getCached(options.audience) ?? (await options.cache.get(options.audience));
    token = placeToken(forwarded, options.tokenHeader, got.token) ? got.result : 'client';
  } catch (err) {
    const e = asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
    stream.resume();
    fail(502, 16 /* UNAUTHENTICATED */, e.code, e.message, e.fix);
    return report(grpc ? 200 : 502, 'none', null, e.code);
  }
  // The client gave up while the token was being minted: nothing goes upstream.
  if (stream.destroyed || stream.closed) return report(499, token, null, 'client closed');

  const t0 = performance.now();
  let upstream;
  try {
    upstream = upstreamFor().request({ ...forwarded, ':method': method, ':path': path, ':authority': options.target.host, ':scheme': options.target.protocol.slice(0, -1) } as OutgoingHttpHeaders);
  } catch (err) {
    const message = describeNetworkError(err);
    fail(502, 14 /* UNAVAILABLE */, 'TARGET_UNREACHABLE', `${options.target.host}: ${message}`, `Check that ${options.target.host} is reachable from the proxy and speaks HTTP/2.`);
    return report(502, token, null, message);
  }
  let timedOut = false;
  upstream.setTimeout(options.upstreamTimeoutMs, () => {
    timedOut = true;
    upstream.close(constants.NGHTTP2_CANCEL);
  });
  stream.pipe(upstream);
  let settled = false;
  let clientClosed = false;
  // The client reset or closed its stream: cancel the upstream one too.
  stream.on('close', () => {
    if (!settled) clientClosed = true;
    if (!upstream.destroyed) upstream.close(constants.NGHTTP2_CANCEL);
  });

  await new Promise<void>((resolve) => {
    let status = 0;
    let trailers: OutgoingHttpHeaders = {};
    const settle = (error?: string) => {
      if (settled) return;
      settled = true;
      if (clientClosed) report(499, token, Math.round((performance.now() - started) * 100) / 100, 'client closed');
      else report(status || (error ? 502 : 0), token, Math.round((performance.now() - (error ? started : t0)) * 100) / 100, error);
      resolve();
    };
    upstream.on('response', (responseHeaders, flags) => {
      status = Number(responseHeaders[':status']);
      const out: OutgoingHttpHeaders = { ':status': status };
      for (const [name, value] of Object.entries(endToEnd(responseHeaders))) if (!name.startsWith(':')) out[name] = value;
      out.via = appendVia(responseHeaders.via as string | undefined, '2', options.viaName);
      if (stream.destroyed) return;
      // A gRPC error is often "trailers-only": one HEADERS frame that ends the stream. Keep it one.
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) return void stream.respond(out, { endStream: true });
      stream.respond(out, { waitForTrailers: true });
      // Trailers are sent whether or not the upstream had any: an empty HEADERS frame still ends the stream.
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      upstream.pipe(stream);
    });
    upstream.on('trailers', (t) => {
      for (const [name, value] of Object.entries(t)) if (!name.startsWith(':')) trailers[name] = value as string;
    });
    upstream.on('end', () => settle());
    const failed = (message: string) => {
      if (timedOut) {
        fail(504, 4 /* DEADLINE_EXCEEDED */, 'TIMEOUT', `${options.target.host} did not answer within ${options.upstreamTimeoutMs} ms`, 'Raise --upstream-timeout if the service is slow to start, or check that it is healthy.');
      } else {
        fail(502, 14 /* UNAVAILABLE */, 'TARGET_UNREACHABLE', `${options.target.host}: ${message}`, `Check that ${options.target.host} is reachable from the proxy and speaks HTTP/2.`);
      }
      settle(timedOut ? 'timed out' : message);
    };
    upstream.on('error', (err) => failed(describeNetworkError(err)));
    upstream.on('close', () => settled || failed('the stream closed before the response ended'));
  });
}
