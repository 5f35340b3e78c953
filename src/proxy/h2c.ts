// HTTP/2 cleartext with prior knowledge (how gRPC clients talk to a local port), on the same port as HTTP/1.1
// (h2c-listener.ts tells the two apart).
// Streams go upstream over HTTP/2 (TLS with ALPN for https targets, h2c for http ones) with the token added,
// trailers included, so gRPC works end to end. Reverse mode, and the HTTP/2 streams of --intercept-tls tunnels.
// Longer than 300 lines because the relay and its stream lifecycle (admission, token, windows, idle, reset, trailers)
// belong together; the listener and the connection sniffing are elsewhere.
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
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { asIdcallError } from '../core/errors.ts';
import type { CacheResult, TokenCache } from '../core/steps/token-cache.ts';
import { describeNetworkError, isCertificateFailure } from '../core/net/transport.ts';
import { bareHost } from '../core/net/addresses.ts';
import { redact } from '../core/redact.ts';
import { appendVia, endToEnd, viaNames } from './headers.ts';
import { placeToken, type TokenHeader } from '../core/net/token-header.ts';
import { shareWithH2c } from '../core/net/h2c-listener.ts';
import { route, type Routing } from '../core/net/routing.ts';
import { forbiddenError, METADATA_REFUSED, type DestinationGuard } from './guards.ts';
import { tunnelThrough } from './connect-tunnel.ts';

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
  /** --connect-to / --resolve for the upstream connections. */
  routing?: Routing;
  /** Forward mode (--intercept-tls): the upstream must not be the metadata server, by name or by the address reached. */
  guard?: DestinationGuard;
  /** The corporate proxy (HTTPS_PROXY / HTTP_PROXY) the upstream is reached through, if any. */
  upstreamProxy?: string;
  onExchange: (entry: { method: string; path: string; status: number; upstreamMs: number | null; token: CacheResult | 'client' | 'none'; error?: string }) => void;
}

/** The guard's refusal, also when node:http2 wraps it as the cause of a cancelled stream. */
const isForbidden = (err: unknown) => (err as { code?: string }).code === 'EIDCALL_FORBIDDEN' || (err as { cause?: { code?: string } }).cause?.code === 'EIDCALL_FORBIDDEN';

export interface H2c {
  close(): void;
}

// Measured with `npm run bench -- h2c`: one connection leaves both ends idle half the time, 16 gain nothing over 4.
const UPSTREAM_CONNECTIONS = 4;
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 32 << 20;

/** Route connections that open with the HTTP/2 preface on `server`'s port to an HTTP/2 proxy. */
export function acceptH2c(server: Server, options: H2cOptions): H2c {
  const h2 = createHttp2Server();
  const relay = createH2Relay(options);
  h2.on('session', relay.track);
  h2.on('stream', relay.handle);
  h2.on('sessionError', () => {});
  const listener = shareWithH2c(server, h2);
  return {
    close() {
      listener.close();
      relay.close();
    },
  };
}

export interface H2Relay {
  /** A client stream to relay to `options.target` over one of a few shared HTTP/2 upstream sessions. */
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void;
  /** Count a client session, so close() ends it. */
  track(session: ServerHttp2Session | ClientHttp2Session): void;
  close(): void;
}

/**
 * The HTTP/2 relay behind `--h2c` and behind `--intercept-tls` for HTTP/2 clients (gRPC over TLS): streams in,
 * the token added, streams out over a few upstream sessions, trailers passed on both ways.
 */
export function createH2Relay(options: H2cOptions): H2Relay {
  const sessions = new Set<ServerHttp2Session | ClientHttp2Session>();
  const track = (session: ServerHttp2Session | ClientHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  };
  const idle = new IdleWatch(options.upstreamTimeoutMs);

  // A few upstream connections, used in turn: over one, the proxy and the service take turns (a batch of requests,
  // then a batch of responses) and each idles while the other works; several keep both busy.
  const upstreams: (ClientHttp2Session | undefined)[] = new Array(UPSTREAM_CONNECTIONS);
  let turn = 0;
  const upstreamFor = (): ClientHttp2Session => {
    const slot = turn++ % UPSTREAM_CONNECTIONS;
    const existing = upstreams[slot];
    if (existing && !existing.closed && !existing.destroyed) return existing;
    // Many client streams share each connection: a 64 KB connection window (HTTP/2's default) would make hundreds
    // of concurrent responses wait on WINDOW_UPDATEs, and Nagle's algorithm would hold back small frames.
    const { hostname, port: rawPort, protocol } = options.target;
    const host = bareHost(hostname);
    const port = Number(rawPort || (protocol === 'https:' ? 443 : 80));
    // --connect-to / --resolve: connect elsewhere, with the real name in SNI and :authority.
    const routed = options.routing ? route(options.routing, host, port) : null;
    const connectHost = routed?.host ?? host;
    const connectPort = routed?.port ?? port;
    if (isIP(connectHost) && options.guard?.refusesPeer(connectHost, connectPort)) throw forbiddenError(`${host}:${port}`);
    const session = http2Connect(options.target.origin, {
      settings: { initialWindowSize: STREAM_WINDOW },
      createConnection: () => {
        // Through a corporate proxy: the tunnel is to the target's own name, which the proxy resolves.
        if (options.upstreamProxy) {
          const tunnel = tunnelThrough(new URL(options.upstreamProxy), host, port, Math.min(options.upstreamTimeoutMs, 30_000), options.tls);
          return protocol === 'https:' ? tlsConnect({ ...options.tls, socket: tunnel, servername: isIP(host) ? undefined : host, ALPNProtocols: ['h2'] } as ConnectionOptions) : tunnel;
        }
        // Refused before connecting, by name or address: node:http2 takes the socket over the moment TCP connects.
        const lookup = options.guard ? { lookup: options.guard.lookupFor(connectPort) } : {};
        return protocol === 'https:'
          ? tlsConnect({ ...options.tls, host: connectHost, port: connectPort, servername: isIP(host) ? undefined : host, ALPNProtocols: ['h2'], noDelay: true, ...lookup } as unknown as ConnectionOptions)
          : netConnect({ host: connectHost, port: connectPort, noDelay: true, ...lookup });
      },
    });
    session.once('connect', () => session.setLocalWindowSize(CONNECTION_WINDOW));
    session.on('error', () => {}); // each stream reports its own failure
    session.once('close', () => upstreams[slot] === session && (upstreams[slot] = undefined));
    session.unref();
    upstreams[slot] = session;
    track(session);
    return session;
  };

  return {
    track,
    handle(stream, headers, flags) {
      // A client's RST_STREAM with an error code surfaces as 'error' on the stream: the stream's end, not the process's.
      stream.on('error', () => {});
      void proxyStream(stream, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, options, upstreamFor, idle).catch(() => stream.destroyed || stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    },
    close() {
      idle.stop();
      for (const session of sessions) session.close();
      setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, 1000).unref();
    },
  };
}

/**
 * Upstream idle timeouts for every stream on one coarse timer: a per-stream timer is re-armed on every frame,
 * which costs more than the proxying itself at thousands of streams a second. Precision: a quarter of the limit.
 */
class IdleWatch {
  private readonly streams = new Set<{ last: number; expire: () => void }>();
  private ticks = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly limitTicks = 4;
  private readonly tickMs: number;

  constructor(limitMs: number) {
    this.tickMs = Math.max(1, Math.ceil(limitMs / this.limitTicks));
  }

  watch(expire: () => void): { touch(): void; done(): void } {
    const entry = { last: this.ticks, expire };
    this.streams.add(entry);
    this.timer ??= setInterval(() => this.sweep(), this.tickMs).unref();
    return {
      touch: () => void (entry.last = this.ticks),
      done: () => void this.streams.delete(entry),
    };
  }

  private sweep(): void {
    this.ticks++;
    for (const entry of this.streams) {
      if (this.ticks - entry.last > this.limitTicks) {
        this.streams.delete(entry);
        entry.expire();
      }
    }
    if (this.streams.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

const isGrpc = (headers: IncomingHttpHeaders) => String(headers['content-type'] ?? '').startsWith('application/grpc');

async function proxyStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, requestEnded: boolean, options: H2cOptions, upstreamFor: () => ClientHttp2Session, idle: IdleWatch): Promise<void> {
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
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': encodeURIComponent(redact(`${code}: ${message}`)), 'x-idcall-proxy': 'error' }, { endStream: true });
    } else {
      stream.respond({ ':status': status, 'content-type': 'application/json', 'x-idcall-proxy': 'error' });
      stream.end(redact(JSON.stringify({ error: { code, message, fix, audience: options.audience } })));
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
  const forwarded = endToEnd(headers);
  // HTTP/2 admits TE only as "trailers", which gRPC requires; a client that asks for trailers gets them passed on.
  const wantsTrailers = String(headers.te ?? '').includes('trailers');
  if (wantsTrailers) forwarded.te = 'trailers';
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
  forwarded[':method'] = method;
  forwarded[':path'] = path;
  forwarded[':authority'] = options.target.host;
  forwarded[':scheme'] = options.target.protocol.slice(0, -1);
  let upstream;
  try {
    // A request whose HEADERS ended the stream (GET, most unary calls' preflight) has no body to pipe.
    upstream = upstreamFor().request(forwarded as OutgoingHttpHeaders, { endStream: requestEnded });
  } catch (err) {
    if (isForbidden(err)) {
      fail(403, 7 /* PERMISSION_DENIED */, 'USAGE_ERROR', METADATA_REFUSED, '');
      return report(grpc ? 200 : 403, token, null, 'metadata refused');
    }
    const message = describeNetworkError(err);
    fail(502, 14 /* UNAVAILABLE */, 'TARGET_UNREACHABLE', `${options.target.host}: ${message}`, `Check that ${options.target.host} is reachable from the proxy and speaks HTTP/2.`);
    return report(502, token, null, message);
  }
  let timedOut = false;
  const watched = idle.watch(() => {
    timedOut = true;
    upstream.close(constants.NGHTTP2_CANCEL);
  });
  if (!requestEnded) stream.pipe(upstream);
  let settled = false;
  let clientClosed = false;
  // The client reset or closed its stream: cancel the upstream one too.
  stream.on('close', () => {
    if (!settled) clientClosed = true;
    if (!upstream.destroyed) upstream.close(constants.NGHTTP2_CANCEL);
  });

  await new Promise<void>((resolve) => {
    let status = 0;
    let trailers: OutgoingHttpHeaders | undefined;
    const settle = (error?: string) => {
      if (settled) return;
      settled = true;
      watched.done();
      if (clientClosed) report(499, token, Math.round((performance.now() - started) * 100) / 100, 'client closed');
      else report(status || (error ? 502 : 0), token, Math.round((performance.now() - (error ? started : t0)) * 100) / 100, error);
      resolve();
    };
    upstream.on('response', (responseHeaders, flags) => {
      watched.touch();
      status = Number(responseHeaders[':status']);
      const out = endToEnd(responseHeaders) as OutgoingHttpHeaders;
      out[':status'] = status;
      out.via = appendVia(responseHeaders.via as string | undefined, '2', options.viaName);
      if (stream.destroyed) return;
      // A gRPC error is often "trailers-only": one HEADERS frame that ends the stream. Keep it one.
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) return void stream.respond(out, { endStream: true });
      // Trailers (gRPC's status) go to clients that asked for them or speak gRPC, sent whether or not the upstream had
      // any: an empty HEADERS frame still ends the stream. Others get the body and its end, one frame fewer.
      const withTrailers = wantsTrailers || grpc || isGrpc(responseHeaders);
      stream.respond(out, withTrailers ? { waitForTrailers: true } : {});
      if (withTrailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
      upstream.on('data', (chunk: Buffer) => {
        watched.touch();
        if (!stream.write(chunk)) upstream.pause();
      });
      stream.on('drain', () => upstream.resume());
    });
    upstream.on('trailers', (t) => {
      trailers = {};
      for (const name in t) if (name.charCodeAt(0) !== 58) trailers[name] = t[name] as string;
    });
    upstream.on('end', () => {
      if (!stream.destroyed && stream.headersSent) stream.end();
      settle();
    });
    const failed = (message: string, forbidden = false) => {
      if (forbidden) {
        fail(403, 7 /* PERMISSION_DENIED */, 'USAGE_ERROR', METADATA_REFUSED, '');
      } else if (timedOut) {
        fail(504, 4 /* DEADLINE_EXCEEDED */, 'TIMEOUT', `${options.target.host} did not answer within ${options.upstreamTimeoutMs} ms`, 'Raise --upstream-timeout if the service is slow to start, or check that it is healthy.');
      } else if (isCertificateFailure(message)) {
        // An upstream whose certificate does not verify is never sent the stream (nor its token).
        fail(502, 14 /* UNAVAILABLE */, 'TLS_ERROR', `${options.target.host}: its certificate does not verify (${message}); nothing was sent to it.`, 'Check the host name, or trust its CA with --cacert (or NODE_EXTRA_CA_CERTS) if it is a private one.');
      } else {
        fail(502, 14 /* UNAVAILABLE */, 'TARGET_UNREACHABLE', `${options.target.host}: ${message}`, `Check that ${options.target.host} is reachable from the proxy and speaks HTTP/2.`);
      }
      settle(timedOut ? 'timed out' : message);
    };
    upstream.on('error', (err) => failed(describeNetworkError(err), isForbidden(err)));
    upstream.on('close', () => settled || failed('the stream closed before the response ended'));
  });
}
