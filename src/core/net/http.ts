// Requests to Google's endpoints (token, IAM Credentials, STS, metadata, certificates): small, bounded,
// answered in full. They go over node:http, not fetch: Node's fetch (and even `import 'node:http'`, whose ESM
// facade touches http.WebSocket) loads Node's bundled undici, a quarter of an `idcall token` run.
// undici proper still carries every request to the user's target (core/net/target.ts) and the proxy.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Http from 'node:http';
import type { Env } from '../context.ts';
import { displayProxy, proxyFor } from './proxy-env.ts';
import { injectedExtraCaFile, trustWith } from './routing.ts';
import { nodeHasProxyAgents } from '../runtime.ts';

export interface HttpInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Never through a proxy: the metadata server is link-local, only this machine can reach it. */
  direct?: boolean;
}

export interface HeaderReader {
  get(name: string): string | null;
}

/** A response already read in full: reading it cannot fail or wait. */
export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: HeaderReader;
  body: Buffer;
  text(): string;
  json(): unknown;
}

export interface HttpClient {
  (url: string, init?: HttpInit): Promise<HttpResponse>;
  /** The proxy a request to `url` would go through (unless `direct`), for the report. */
  proxyFor?: (url: string) => string | undefined;
}

/** Google's answers here are a few kilobytes; anything past this is not Google. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

const builtin = createRequire(import.meta.url);
// Loaded on first use, each: node:https brings TLS, which a plain-http metadata server never needs.
let http: typeof Http | undefined;
let https: typeof import('node:https') | undefined;

function bufferedResponse(status: number, headers: HeaderReader, body: Buffer): HttpResponse {
  return {
    status,
    ok: status >= 200 && status < 300,
    headers,
    body,
    text: () => body.toString('utf8'),
    json: () => JSON.parse(body.toString('utf8')),
  };
}

/**
 * The default client: one request, its body read in full; aborting the signal fails it with the signal's reason.
 * HTTPS_PROXY, HTTP_PROXY and NO_PROXY from `env` are honoured (core/net/proxy-env.ts), except for loopback and the
 * metadata server.
 */
export function createNodeHttp(env: Env = {}): HttpClient {
  const agents = new Map<string, Http.Agent>();
  // The trust for Google's endpoints: the default store plus IDCALL_CACERT and, when this environment names one the
  // process did not start with (an injected environment, a library caller's), NODE_EXTRA_CA_CERTS.
  let ca: string[] | undefined | null = null;
  const trust = (): string[] | undefined => {
    if (ca !== null) return ca;
    const files = [env.IDCALL_CACERT, injectedExtraCaFile(env)].filter((f): f is string => Boolean(f));
    const pems = files.flatMap((f) => {
      try {
        return statSync(f).isFile() && statSync(f).size < 1 << 20 ? [readFileSync(f, 'utf8')] : [];
      } catch {
        return [];
      }
    });
    return (ca = trustWith(pems.join('\n') || undefined));
  };
  const client: HttpClient = (url, init = {}) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const transport = secure ? (https ??= builtin('node:https')) : target.protocol === 'http:' ? (http ??= builtin('node:http')) : undefined;
    if (!transport) return Promise.reject(new TypeError(`unsupported URL scheme ${target.protocol} in ${target.origin}`));
    const proxy = init.direct ? undefined : proxyFor(target, env);
    const tls = secure ? trust() : undefined;
    if (!proxy) return exchange(transport, target, init, undefined, tls);
    if (!nodeHasProxyAgents()) {
      return Promise.reject(Object.assign(new Error(`the proxy ${displayProxy(proxy)} (HTTPS_PROXY/HTTP_PROXY) needs Node.js 22.21, 24.5 or later; this is ${process.versions.node}`), { code: 'ERR_PROXY_UNSUPPORTED' }));
    }
    const key = `${target.protocol}${proxy}`;
    let agent = agents.get(key);
    if (!agent) agents.set(key, (agent = new transport.Agent({ keepAlive: true, proxyEnv: { HTTPS_PROXY: proxy, HTTP_PROXY: proxy }, ...(tls ? { ca: tls } : {}) } as Http.AgentOptions)));
    return exchange(transport, target, init, agent, tls);
  };
  client.proxyFor = (url) => proxyFor(new URL(url), env);
  return client;
}

function exchange(transport: typeof Http | typeof import('node:https'), target: URL, init: HttpInit, agent: Http.Agent | undefined, ca?: string[]): Promise<HttpResponse> {
  const { signal } = init;
  return new Promise<HttpResponse>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
    // Named, as the call to the target is: Google's audit logs show it as the caller-supplied user agent.
    const headers: Record<string, string | number> = { 'user-agent': 'idcall', ...init.headers };
    if (body) headers['content-length'] = body.byteLength;
    const request = transport.request(target, { method: init.method ?? 'GET', headers, ...(agent ? { agent } : {}), ...(ca ? { ca } : {}) });
    const fail = (err: unknown) => {
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    };
    const onAbort = () => {
      request.destroy();
      fail(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', fail);
    request.on('response', (response: Http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          request.destroy(Object.assign(new Error(`the answer is larger than ${MAX_BODY_BYTES} bytes`), { code: 'ERR_BODY_TOO_LARGE' }));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', fail);
      response.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        const raw = response.headers;
        const headerReader: HeaderReader = {
          get: (name) => {
            const value = raw[name.toLowerCase()];
            return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
          },
        };
        resolve(bufferedResponse(response.statusCode ?? 0, headerReader, Buffer.concat(chunks)));
      });
    });
    request.end(body);
  });
}
