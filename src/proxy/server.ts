// The token-injecting proxy: reverse (one target) or forward (HTTP_PROXY sidecar), one node:http server,
// undici keep-alive pools upstream, streaming both ways, one cached token per audience; h2c (gRPC) in h2c.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Agent as AgentType, Dispatcher } from 'undici';
import { asIdcallError } from '../core/errors.ts';
import { importForModernNode } from '../core/runtime.ts';
import type { TokenCache, CacheResult } from '../core/token-cache.ts';
import { describeNetworkError } from '../core/transport.ts';
import { appendVia, endToEnd, hostAllowed, placeToken, type TokenHeader } from './headers.ts';
import { acceptH2c } from './h2c.ts';
import { ProxyMetrics } from './metrics.ts';

export interface AccessLogEntry {
  time: string;
  method: string;
  host: string;
  path: string;
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
  /** Forward mode: hosts that get a token (`*.run.app`, `host`, `host:port`). */
  allowHosts: string[];
  /** Forward mode: refuse hosts that are not allowed instead of passing them through. */
  strict: boolean;
  /** Forward mode: send plain-http requests for allowed hosts upstream over https. */
  upgradeHttp: boolean;
  headerName: 'Authorization' | 'X-Serverless-Authorization';
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
  /** Reverse mode: also accept HTTP/2 cleartext with prior knowledge (gRPC) on the same port. */
  h2c?: boolean;
  /** The HTTP proxy (HTTPS_PROXY/HTTP_PROXY) a request to this upstream goes through, if any. */
  upstreamProxy?: (origin: URL) => string | undefined;
}

export interface RunningProxy {
  url: string;
  server: Server;
  metrics: ProxyMetrics;
  close(): Promise<void>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

interface Route {
  origin: string;
  path: string;
  host: string;
  /** null: pass through without a token. */
  audience: string | null;
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { Agent, ProxyAgent } = await importForModernNode(() => import('../core/undici.ts'), 'idcall proxy');
  const metrics = new ProxyMetrics();
  const timeout = options.upstreamTimeoutMs ?? 60_000;
  const pool = { keepAliveTimeout: 30_000, headersTimeout: timeout, bodyTimeout: timeout, connections: 128, pipelining: 1 };
  const agent = new Agent({ ...pool, ...(options.connect ? { connect: options.connect } : {}) });
  const viaProxy = new Map<string, Dispatcher>();
  // Decided once per upstream origin: the request path stays a map lookup.
  const byOrigin = new Map<string, Dispatcher>();
  const dispatcherFor = (origin: string): Dispatcher => {
    let dispatcher = byOrigin.get(origin);
    if (dispatcher) return dispatcher;
    const proxy = options.upstreamProxy?.(new URL(origin));
    if (!proxy) dispatcher = agent;
    else if (!(dispatcher = viaProxy.get(proxy))) viaProxy.set(proxy, (dispatcher = new ProxyAgent({ ...pool, uri: proxy, ...(options.connect ? { requestTls: options.connect as never } : {}) })));
    if (byOrigin.size < 1000) byOrigin.set(origin, dispatcher);
    return dispatcher;
  };
  const tokenHeader = options.headerName.toLowerCase() as TokenHeader;
  const log = options.onLog ?? (() => {});
  const inflight = new Set<Promise<void>>();
  // Tunnels (CONNECT, upgrades) leave node:http's bookkeeping once they switch protocols: close() ends them itself.
  const tunnels = new Set<Socket>();
  const track = (...sockets: Socket[]) => {
    for (const s of sockets) {
      tunnels.add(s);
      s.once('close', () => tunnels.delete(s));
    }
  };

  const route = (req: IncomingMessage): Route | { error: number; message: string } => {
    const raw = req.url ?? '/';
    if (options.mode === 'reverse') {
      const target = options.target!;
      const basePath = target.pathname.replace(/\/$/, '');
      return { origin: target.origin, path: basePath + (raw.startsWith('/') ? raw : `/${raw}`), host: target.host, audience: options.audience ?? target.origin };
    }
    if (raw.startsWith('/')) return { error: 400, message: 'This is a forward proxy: send absolute-form requests (set HTTP_PROXY to this address).' };
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { error: 400, message: 'Malformed request target.' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { error: 400, message: `Unsupported scheme ${url.protocol}` };
    const allowed = hostAllowed(options.allowHosts, url.host);
    if (!allowed && options.strict) return { error: 403, message: `${url.host} is not an allowed host (--allow-host); --strict refuses it.` };
    const upgraded = allowed && options.upgradeHttp && url.protocol === 'http:' ? new URL(`https://${url.hostname}${url.port && url.port !== '80' ? `:${url.port}` : ''}`) : url;
    return { origin: upgraded.origin, path: url.pathname + url.search, host: upgraded.host, audience: allowed ? upgraded.origin : null };
  };

  const json = (res: ServerResponse, status: number, body: object) => {
    if (res.headersSent) return res.destroy();
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-idcall-proxy': 'error' });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const localPath = req.url ?? '/';
    if (localPath === '/__idcall/health' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ status: 'ok', mode: options.mode, inflight: metrics.inflight }));
    }
    if (localPath === '/__idcall/metrics' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return void res.end(metrics.prometheus());
    }
    const r = route(req);
    const entry: AccessLogEntry = { time: options.onLog ? new Date().toISOString() : '', method, host: 'host' in r ? r.host : String(req.headers.host ?? ''), path: 'path' in r ? r.path.split('?')[0]! : localPath.split('?')[0]!, status: 0, upstreamMs: null, token: 'none' };
    const finish = () => {
      entry.status = res.statusCode;
      metrics.record(entry.status, entry.token, entry.upstreamMs);
      log(entry);
    };
    if ('error' in r) {
      json(res, r.error, { error: { code: 'USAGE_ERROR', message: r.message } });
      return finish();
    }

    const headers = endToEnd(req.headers);
    headers.host = r.host;
    headers.via = appendVia(req.headers.via, `${req.httpVersionMajor}.${req.httpVersionMinor}`);
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
      placed = placeToken(headers, tokenHeader, token);
      if (!placed) entry.token = 'client';
    }

    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const send = (withHeaders: Record<string, string | string[]>) =>
      dispatcherFor(r.origin).request({ origin: r.origin, path: r.path, method: method as Dispatcher.HttpMethod, headers: withHeaders, body: hasBody ? req : null });
    try {
      const t0 = performance.now();
      let upstream = await send(headers);
      // A 401 to a cached token: it may have been revoked or rotated early. Mint afresh once and retry what can be replayed.
      if (upstream.statusCode === 401 && token && placed && r.audience && IDEMPOTENT.has(method) && !hasBody) {
        await upstream.body.dump();
        options.cache.invalidate(r.audience, token);
        const again = await options.cache.get(r.audience);
        headers[placed] = `Bearer ${again.token}`;
        entry.token = 'retry';
        upstream = await send(headers);
      }
      entry.upstreamMs = Math.round((performance.now() - t0) * 100) / 100;
      const responseHeaders = endToEnd(upstream.headers as Record<string, string | string[]>);
      responseHeaders.via = appendVia(upstream.headers.via as string | undefined);
      res.writeHead(upstream.statusCode, responseHeaders);
      for await (const chunk of upstream.body) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    } catch (err) {
      const code = describeNetworkError(err);
      entry.error = code;
      if (entry.upstreamMs === null) entry.upstreamMs = Math.round((performance.now() - started) * 100) / 100;
      const timedOut = /timed out|Timeout/i.test(code) || (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT';
      json(res, timedOut ? 504 : 502, { error: { code: timedOut ? 'TIMEOUT' : 'TARGET_UNREACHABLE', message: `${r.host}: ${code}`, fix: `Check that ${r.host} is reachable from the proxy.` } });
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
  const h2c = options.h2c && options.mode === 'reverse'
    ? acceptH2c(server, {
        target: options.target!,
        audience: options.audience ?? options.target!.origin,
        cache: options.cache,
        tokenHeader,
        upstreamTimeoutMs: timeout,
        ...(options.connect ? { tls: options.connect as ConnectionOptions } : {}),
        onExchange: (e) => {
          metrics.record(e.status, e.token, e.upstreamMs);
          log({ time: options.onLog ? new Date().toISOString() : '', host: options.target!.host, ...e });
        },
      })
    : null;

  // CONNECT: a TLS tunnel the proxy cannot look into, so no token can be added; passed through untouched.
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const [host, port] = [(req.url ?? '').replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(req.url ?? '')?.[1] ?? 443)];
    if (options.mode === 'reverse' || (options.strict && !hostAllowed(options.allowHosts, req.url ?? ''))) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const upstream = netConnect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const kill = () => {
      upstream.destroy();
      client.destroy();
    };
    track(client, upstream);
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
    client.on('error', kill);
  });

  // WebSocket and other upgrades: the handshake gets the token, then bytes flow both ways.
  server.on('upgrade', async (req: IncomingMessage, client: Socket, head: Buffer) => {
    const r = route(req);
    if ('error' in r) return void client.end(`HTTP/1.1 ${r.error} Bad Request\r\ncontent-length: 0\r\n\r\n`);
    const headers = endToEnd(req.headers, ['connection', 'upgrade']);
    headers.host = r.host;
    if (r.audience) {
      try {
        placeToken(headers, tokenHeader, (await options.cache.get(r.audience)).token);
      } catch {
        metrics.mintFailures++;
        return void client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
      }
    }
    const url = new URL(r.origin);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const onConnect = () => {
      const lines = [`${req.method} ${r.path} HTTP/1.1`, ...Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`))];
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    };
    const upstream = url.protocol === 'https:' ? tlsConnect({ host: url.hostname, port, servername: url.hostname }, onConnect) : netConnect(port, url.hostname, onConnect);
    track(client, upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
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
        const limit = new Promise((resolve) => setTimeout(resolve, options.shutdownTimeoutMs ?? 10_000).unref());
        await Promise.race([Promise.allSettled([...inflight]), limit]);
        server.closeAllConnections();
        for (const s of tunnels) s.destroy();
        h2c?.close();
        await Promise.all([agent, ...viaProxy.values()].map((d) => d.close().catch(() => {})));
      })()),
  };
}
