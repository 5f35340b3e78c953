// The token-injecting proxy: reverse (one target) or forward (HTTP_PROXY sidecar), one node:http server,
// undici keep-alive pools upstream, streaming both ways, one cached token per audience; h2c (gRPC) in h2c.ts,
// CONNECT and upgrades in tunnels.ts, which requests are served and where each goes in routes.ts (its checks in
// guards.ts), the upstream exchange in relay.ts. Longer than 300 lines because one request's whole life in both
// modes (mint, relay, log, shut down) reads best in one place; the pieces that stand alone are already out.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Agent as AgentType, Dispatcher } from 'undici';
import { asIdcallError } from '../core/errors.ts';
import { importForModernNode } from '../core/runtime.ts';
import type { TokenCache, CacheResult } from '../core/steps/token-cache.ts';
import { describeNetworkError, isCertificateFailure } from '../core/net/transport.ts';
import { redact } from '../core/redact.ts';
import { destinationGuard, guardedConnector, guardedLookup, pageRequestAccepted, type Listener } from './guards.ts';
import { createRouter } from './routes.ts';
import { appendVia, endToEnd } from './headers.ts';
import { placeToken, type TokenHeader } from '../core/net/token-header.ts';
import { DEFAULTS } from '../core/options.ts';
import { routedConnector, trustWith, type Routing } from '../core/net/routing.ts';
import { createInterceptor, type Interceptor } from './intercept.ts';
import { acceptH2c } from './h2c.ts';
import { ProxyMetrics } from './metrics.ts';
import { relay, type Relay } from './relay.ts';
import { handleConnect, rawReply, spliceUpgrade, type TunnelPolicy } from './tunnels.ts';

export interface AccessLogEntry {
  time: string;
  method: string;
  host: string;
  path: string;
  /** 499: the client closed the connection before its response was written. */
  status: number;
  upstreamMs: number | null;
  token: CacheResult | 'none' | 'retry' | 'client';
  error?: string;
}

export interface ProxyOptions {
  mode: 'reverse' | 'forward';
  /** Reverse mode: the one upstream. */
  target?: URL;
  /** Reverse mode: token audience (default: the target's origin). */
  audience?: string;
  /** Forward mode: hosts that get a token (`*.run.app`, `host`, `host:port`, `[::1]:port`). */
  allowHosts: string[];
  /** Forward mode: refuse hosts that are not allowed instead of passing them through. */
  strict: boolean;
  /** Forward mode: send plain-http requests for allowed hosts upstream over https. */
  upgradeHttp: boolean;
  /** Header that carries the token (any letter case); a client's own Authorization is always kept. */
  headerName: string;
  host: string;
  port: number;
  cache: TokenCache;
  onLog?: (entry: AccessLogEntry) => void;
  /** Upstream time limit for response headers and idle body (ms). */
  upstreamTimeoutMs?: number;
  /** How long shutdown waits for in-flight requests (ms). */
  shutdownTimeoutMs?: number;
  /** TLS options for upstream connections (tests use a private CA). */
  connect?: AgentType.Options['connect'];
  /** --resolve, --connect-to and --cacert for the upstreams (HTTP/1.1; h2c upstreams use the system's DNS and trust). */
  routing?: Routing;
  /** Forward mode, --intercept-tls: the leaf certificate for an allowlisted host a CONNECT names. */
  interceptTls?: (host: string) => import('node:tls').SecureContext;
  /** Reverse mode: also accept HTTP/2 cleartext with prior knowledge (gRPC) on the same port. */
  h2c?: boolean;
  /** The HTTP proxy (HTTPS_PROXY/HTTP_PROXY) a request to this upstream goes through, if any. */
  upstreamProxy?: (origin: URL) => string | undefined;
  /** Reverse mode: browser origins, besides the proxy's own, whose pages may use it (--allow-origin). */
  allowOrigins?: string[];
  /** Forward mode: the metadata server's addresses from the environment, refused like 169.254.169.254. */
  metadataHosts?: string[];
}

export interface RunningProxy {
  url: string;
  server: Server;
  metrics: ProxyMetrics;
  close(): Promise<void>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** The path of a request target for the access log: absolute-form targets lose scheme and host, all lose the query. */
function logPath(target: string): string {
  return target.split('?')[0]!.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') || '/';
}

const CLIENT_CLOSED = Object.assign(new Error('the client closed the connection'), { code: 'EIDCALL_CLIENT_CLOSED' });

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { Agent, ProxyAgent, buildConnector } = await importForModernNode(() => import('../core/net/undici.ts'), 'idcall proxy');
  const metrics = new ProxyMetrics();
  const timeout = options.upstreamTimeoutMs ?? DEFAULTS.upstreamTimeoutMs;
  const metadataHosts = options.metadataHosts ?? [];
  const allowOrigins = options.allowOrigins ?? [];
  // This instance's name in Via: a request that already carries it has come round a loop.
  const viaName = `idcall-${randomBytes(4).toString('hex')}`;
  const pool = { keepAliveTimeout: 30_000, headersTimeout: timeout, bodyTimeout: timeout, connections: 128, pipelining: 1 };
  // Forward mode resolves upstream names through the guard: a name that resolves to the metadata server is refused.
  const ca = trustWith(options.routing?.ca);
  const connectOptions = { ...(options.connect as object | undefined), ...(ca ? { ca } : {}), ...(options.mode === 'forward' ? { lookup: guardedLookup } : {}) };
  // --connect-to / --resolve (a private endpoint, the emulator): the upstream's name stays in Host, SNI and the check.
  // Forward mode also checks the address each connection reached, before a request is written on it.
  const guard = options.mode === 'forward' ? await destinationGuard(metadataHosts) : null;
  const connect = guard
    ? guardedConnector(routedConnector(buildConnector, connectOptions, options.routing), guard)
    : options.routing
      ? routedConnector(buildConnector, connectOptions, options.routing)
      : Object.keys(connectOptions).length
        ? connectOptions
        : undefined;
  const agent = new Agent({ ...pool, ...(connect ? { connect } : {}) });
  const viaProxy = new Map<string, Dispatcher>();
  // Decided once per upstream origin: the request path stays a map lookup.
  const byOrigin = new Map<string, Dispatcher>();
  const dispatcherFor = (origin: string): Dispatcher => {
    let dispatcher = byOrigin.get(origin);
    if (dispatcher) return dispatcher;
    const proxy = options.upstreamProxy?.(new URL(origin));
    if (!proxy) dispatcher = agent;
    else if (!(dispatcher = viaProxy.get(proxy))) viaProxy.set(proxy, (dispatcher = new ProxyAgent({ ...pool, uri: proxy, ...(options.connect || ca ? { requestTls: { ...(options.connect as object | undefined), ...(ca ? { ca } : {}) } as never } : {}) })));
    if (byOrigin.size < 1000) byOrigin.set(origin, dispatcher);
    return dispatcher;
  };
  // HTTP/2 relays take the corporate proxy as an option; HTTP/1.1 goes through dispatcherFor's ProxyAgent.
  const upstreamProxyFor = (origin: URL): { upstreamProxy?: string } => {
    const proxy = options.upstreamProxy?.(origin);
    return proxy ? { upstreamProxy: proxy } : {};
  };
  const tokenHeader = options.headerName.toLowerCase() as TokenHeader;
  const log = options.onLog ?? (() => {});
  const inflight = new Set<Promise<void>>();
  const tunnels = new Set<Socket>();
  const track = (...sockets: Socket[]) => {
    for (const s of sockets) {
      tunnels.add(s);
      s.once('close', () => tunnels.delete(s));
    }
  };
  // Known once listening; the guards compare Host and Origin with it.
  const listener: Listener = { address: options.host, port: options.port };

  const { admit, route, pageRefusal } = createRouter({ ...options, allowOrigins, guard, viaName, listener });

  // Error bodies can quote an endpoint's answer (a token endpoint echoing a refresh token): redacted like all output.
  const json = (res: ServerResponse, status: number, body: object) => {
    if (res.headersSent) return res.destroy();
    const text = redact(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-idcall-proxy': 'error' });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const localPath = req.url ?? '/';
    if ((localPath === '/__idcall/health' || localPath === '/__idcall/metrics') && method === 'GET' && !admit(req.headers)) {
      if (localPath === '/__idcall/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ status: 'ok', mode: options.mode, inflight: metrics.inflight, ...(options.interceptTls ? { interceptTls: { enabled: true, hosts: options.allowHosts } } : {}) }));
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return void res.end(metrics.prometheus());
    }
    const r = route(req);
    const entry: AccessLogEntry = { time: options.onLog ? new Date().toISOString() : '', method, host: 'host' in r ? r.host : String(req.headers.host ?? ''), path: 'path' in r ? r.path.split('?')[0]! : logPath(localPath), status: 0, upstreamMs: null, token: 'none' };
    // A client that goes away before its response is written: cancel the upstream request and free everything.
    let clientGone = false;
    let inFlight: Relay | null = null;
    res.once('close', () => {
      // A client that closes once it has every byte it was told to expect got its answer: that is not a 499.
      if (res.writableFinished || inFlight?.delivered()) return;
      clientGone = true;
      inFlight?.abort(CLIENT_CLOSED);
    });
    const finish = () => {
      entry.status = clientGone ? 499 : res.statusCode;
      if (clientGone) entry.error = 'client closed';
      metrics.record(entry.status, entry.token, entry.upstreamMs);
      log(entry);
    };
    if ('error' in r) {
      req.resume();
      json(res, r.error, { error: { code: r.code, message: r.message } });
      return finish();
    }

    const headers = endToEnd(req.headers);
    headers.host = r.host;
    headers.via = appendVia(req.headers.via, `${req.httpVersionMajor}.${req.httpVersionMinor}`, viaName);
    // node:http has already answered `Expect: 100-continue` to the client; the upstream hop is ours to make.
    // (Only when present: `delete` turns the object into a slow dictionary for everything that reads it after.)
    if (headers.expect !== undefined) delete headers.expect;
    let token: string | null = null;
    let placed: TokenHeader | null = null;
    if (r.audience) {
      try {
        const got = options.cache.getCached(r.audience) ?? (await options.cache.get(r.audience));
        token = got.token;
        entry.token = got.result;
      } catch (err) {
        metrics.mintFailures++;
        const e = asIdcallError(err, 'TOKEN_ENDPOINT_ERROR');
        entry.error = e.code;
        req.resume();
        json(res, 502, { error: { code: e.code, message: e.message, fix: e.fix, audience: r.audience } });
        return finish();
      }
      if (clientGone) return finish();
      placed = placeToken(headers, tokenHeader, token);
      if (!placed) entry.token = 'client';
    }

    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const retryable = Boolean(token && placed && r.audience && IDEMPOTENT.has(method) && !hasBody);
    const send = (withHeaders: Record<string, string | string[]>, mayRetry: boolean) => {
      inFlight = relay(dispatcherFor(r.origin), { origin: r.origin, path: r.path, method: method as Dispatcher.HttpMethod, headers: withHeaders, body: hasBody ? req : null }, res, (status, upstreamHeaders) => {
        // A 401 to a cached token: it may have been revoked or rotated early. Mint afresh once and retry what can be replayed.
        if (status === 401 && mayRetry) return false;
        const responseHeaders = endToEnd(upstreamHeaders);
        responseHeaders.via = appendVia(upstreamHeaders.via, '1.1', viaName);
        res.writeHead(status, responseHeaders);
        return true;
      });
      return inFlight.done;
    };
    try {
      let relayed = await send(headers, retryable);
      if (!relayed.written && !clientGone) {
        options.cache.invalidate(r.audience!, token!);
        const again = await options.cache.get(r.audience!);
        headers[placed!] = `Bearer ${again.token}`;
        entry.token = 'retry';
        relayed = await send(headers, false);
      }
      entry.upstreamMs = Math.round(relayed.headersMs * 100) / 100;
    } catch (err) {
      if (clientGone) return finish();
      const code = describeNetworkError(err);
      entry.error = code;
      if (entry.upstreamMs === null) entry.upstreamMs = Math.round((performance.now() - started) * 100) / 100;
      const e = err as { code?: string; name?: string; cause?: { code?: string } };
      const timedOut = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.name === 'TimeoutError';
      const refused = e.code === 'EIDCALL_FORBIDDEN' || e.cause?.code === 'EIDCALL_FORBIDDEN';
      // An upstream whose certificate does not verify is never relayed to: the client gets a 502 naming it.
      const tlsFailed = isCertificateFailure(`${e.code ?? ''} ${e.cause?.code ?? ''}`);
      json(res, refused ? 403 : timedOut ? 504 : 502, {
        error: refused
          ? { code: 'USAGE_ERROR', message: `${r.host} is the metadata server or a link-local address (by its address); the proxy does not relay there.` }
          : tlsFailed
            ? { code: 'TLS_ERROR', message: `${r.host}: its certificate does not verify (${e.cause?.code ?? e.code}); nothing was sent to it.`, fix: `Check the host name, or trust its CA with --cacert (or NODE_EXTRA_CA_CERTS) if it is a private one.` }
            : { code: timedOut ? 'TIMEOUT' : 'TARGET_UNREACHABLE', message: `${r.host}: ${code}`, fix: `Check that ${r.host} is reachable from the proxy.` },
      });
    }
    finish();
  };

  const server = createServer((req, res) => {
    metrics.inflight++;
    const done = handle(req, res)
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      })
      .finally(() => {
        metrics.inflight--;
        inflight.delete(done);
      });
    inflight.add(done);
  });
  server.keepAliveTimeout = 65_000;
  // A client's broken connection is that client's problem, never the process's.
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  const h2c = options.h2c && options.mode === 'reverse'
    ? acceptH2c(server, {
        target: options.target!,
        audience: options.audience ?? options.target!.origin,
        cache: options.cache,
        tokenHeader,
        upstreamTimeoutMs: timeout,
        viaName,
        admit: (headers) => admit({ host: headers[':authority'] ?? headers.host, origin: headers.origin, 'sec-fetch-site': headers['sec-fetch-site'] }),
        // The same reach as HTTP/1.1 upstreams: --connect-to / --resolve, and --cacert or NODE_EXTRA_CA_CERTS.
        ...(options.connect || ca ? { tls: { ...(options.connect as ConnectionOptions | undefined), ...(ca ? { ca } : {}) } } : {}),
        ...(options.routing ? { routing: options.routing } : {}),
        ...upstreamProxyFor(options.target!),
        onExchange: (e) => {
          metrics.record(e.status, e.token, e.upstreamMs);
          if (options.onLog) log({ time: new Date().toISOString(), host: options.target!.host, ...e });
        },
      })
    : null;

  // --intercept-tls (intercept.ts): HTTP/1.1 requests inside the tunnel go through the same handler as a plain
  // forward request for https://HOST; HTTP/2 streams through the relay --h2c uses.
  let intercept: TunnelPolicy['intercept'];
  let interceptor: Interceptor | undefined;
  if (options.mode === 'forward' && options.interceptTls) {
    interceptor = createInterceptor({
      allowHosts: options.allowHosts,
      guard: guard!,
      pageRefused: (headers, origin) => (pageRequestAccepted(headers, [origin.origin], allowOrigins) ? null : pageRefusal(headers.origin, origin.host)),
      leafFor: options.interceptTls,
      http1: (req, res) => {
        metrics.inflight++;
        const done = handle(req, res)
          .catch(() => void (res.headersSent ? res.destroy() : res.writeHead(500).end()))
          .finally(() => {
            metrics.inflight--;
            inflight.delete(done);
          });
        inflight.add(done);
      },
      relayOptions: (origin, audience) => ({
        target: origin,
        audience,
        cache: options.cache,
        tokenHeader,
        upstreamTimeoutMs: timeout,
        viaName,
        admit: () => null,
        guard: guard!,
        ...(ca ? { tls: { ca } } : {}),
        ...(options.routing ? { routing: options.routing } : {}),
        ...upstreamProxyFor(origin),
        onExchange: (e) => {
          metrics.record(e.status, e.token, e.upstreamMs);
          if (options.onLog) log({ time: new Date().toISOString(), host: origin.host, ...e });
        },
      }),
    });
    intercept = interceptor.accept;
  }
  const policy: TunnelPolicy = { mode: options.mode, strict: options.strict, allowHosts: options.allowHosts, guard, connectTimeoutMs: Math.min(timeout, 30_000), track, ...(intercept ? { intercept } : {}) };
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => handleConnect(req, client, head, policy));

  // WebSocket and other upgrades: the same admission rules as any request (a page can open a WebSocket anywhere).
  server.on('upgrade', async (req: IncomingMessage, client: Socket, head: Buffer) => {
    client.on('error', () => client.destroy());
    const r = route(req);
    if ('error' in r) return rawReply(client, r.error, r.message);
    const headers = endToEnd(req.headers, ['connection', 'upgrade']);
    headers.host = r.host;
    headers.via = appendVia(req.headers.via, '1.1', viaName);
    if (r.audience) {
      try {
        placeToken(headers, tokenHeader, (await options.cache.get(r.audience)).token);
      } catch {
        metrics.mintFailures++;
        return rawReply(client, 502);
      }
    }
    spliceUpgrade(req, client, head, { origin: r.origin, path: r.path, headers, guard, ...(options.connect ? { tls: options.connect as ConnectionOptions } : {}) }, policy);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  listener.address = address.address;
  listener.port = address.port;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    server,
    metrics,
    close: () =>
      (closing ??= (async () => {
        // Stop accepting, let in-flight requests finish (bounded), then drop what is left.
        server.close();
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        // Not unref'd: this wait is what keeps a shutting-down process alive until its requests are done.
        const limit = new Promise((resolve) => (timer = setTimeout(resolve, options.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs)));
        await Promise.race([Promise.allSettled([...inflight]), limit]);
        clearTimeout(timer);
        server.closeAllConnections();
        for (const s of tunnels) s.destroy();
        h2c?.close();
        interceptor?.close();
        await Promise.all([agent, ...viaProxy.values()].map((d) => d.close().catch(() => {})));
      })()),
  };
}
