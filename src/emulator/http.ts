// Plumbing shared by the emulator's servers: bodies, Google's two error dialects, pages, and fault injection.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createHttp2Server } from 'node:http2';
import { shareWithH2c } from '../core/net/h2c-listener.ts';
import type { AddressInfo, Socket } from 'node:net';
import type { Fault } from './scenario.ts';
import type { EmulatorState } from './state.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/**
 * Request bodies Google's front ends take: Cloud Run 32 MiB over HTTP/1 (cloud.google.com/run/quotas), 1st-gen
 * functions 10 MB (functions/quotas-1st-gen). The auth endpoints' own limit is not documented: 1 MiB here.
 */
export const BODY_LIMITS = { cloudRun: 32 << 20, functionGen1: 10 << 20, api: 1 << 20 } as const;

/** A body over its front end's limit: answered 413 with Google's page, as the front end does. */
export class BodyTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`request body over ${limit} bytes`);
    this.limit = limit;
  }
}

/** Read a request body up to `limit` bytes, handing each chunk to `keep` (if any); its size. */
async function drainBody(req: IncomingMessage, limit: number, keep?: (chunk: Buffer) => void): Promise<number> {
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge(limit);
    keep?.(chunk as Buffer);
  }
  return size;
}

export async function readBodyBytes(req: IncomingMessage, limit: number = BODY_LIMITS.api): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await drainBody(req, limit, (chunk) => chunks.push(chunk));
  return Buffer.concat(chunks);
}

export const readBody = async (req: IncomingMessage, limit: number = BODY_LIMITS.api): Promise<string> => (await readBodyBytes(req, limit)).toString('utf8');

/** The size of a request body the service only reports on, counted as it streams (nothing is kept). */
export const countBody = (req: IncomingMessage, limit: number): Promise<number> => drainBody(req, limit);

/** A handler that threw: Google's 413 for a body over the limit (the connection closes), else the emulator's own 500. */
export function answerFailure(res: ServerResponse, err: unknown): void {
  if (err instanceof BodyTooLarge) {
    return send(res, 413, googleErrorPage(413, 'Request Entity Too Large', 'Your client issued a request that was too large.'), { 'content-type': 'text/html; charset=UTF-8', connection: 'close' });
  }
  send(res, 500, `emulator error: ${err instanceof Error ? err.message : String(err)}`, { 'content-type': 'text/plain' });
}

export function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

const JSON_UTF8 = 'application/json; charset=utf-8';
const NO_STORE = {
  'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
  pragma: 'no-cache',
  expires: 'Mon, 01 Jan 1990 00:00:00 GMT',
  'x-xss-protection': '0',
  'x-frame-options': 'SAMEORIGIN',
  'x-content-type-options': 'nosniff',
  // The token endpoint's answers carry it, errors included (§2.4).
  vary: 'Origin, X-Origin, Referer',
};

/** OAuth 2.0 dialect (token endpoint, STS): a flat `{error, error_description}` object. */
export function oauthError(res: ServerResponse, status: number, error: string, description: string, extra: Record<string, string> = {}): void {
  send(res, status, JSON.stringify({ error, error_description: description, ...extra }, null, 2), {
    'content-type': JSON_UTF8,
    server: 'scaffolding on HTTPServer2',
    ...NO_STORE,
  });
}

export function oauthJson(res: ServerResponse, body: object): void {
  send(res, 200, JSON.stringify(body), { 'content-type': JSON_UTF8, server: 'scaffolding on HTTPServer2', ...NO_STORE });
}

/** Google API dialect (iamcredentials and every *.googleapis.com REST API): `{error: {code, message, status, details}}`. */
export function apiError(res: ServerResponse, code: number, status: string, message: string, details: object[] = []): void {
  send(res, code, JSON.stringify({ error: { code, message, status, ...(details.length ? { details } : {}) } }, null, 2), {
    'content-type': 'application/json; charset=UTF-8',
    server: 'ESF',
    vary: 'Origin, X-Origin, Referer',
    'x-xss-protection': '0',
    'x-frame-options': 'SAMEORIGIN',
    'x-content-type-options': 'nosniff',
  });
}

export function apiJson(res: ServerResponse, body: object): void {
  send(res, 200, JSON.stringify(body, null, 2), { 'content-type': 'application/json; charset=UTF-8', server: 'ESF' });
}

/** Google's generic HTML error page ("Error 404 (Not Found)!!1"). */
export function googleErrorPage(status: number, reason: string, sentence: string): string {
  return (
    `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">\n` +
    `  <title>Error ${status} (${reason})!!1</title>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n` +
    `  <p><b>${status}.</b> <ins>That’s an error.</ins>\n  <p>${sentence}  <ins>That’s all we know.</ins>\n`
  );
}

export function listen(server: Server, port = 0, scheme: 'http' | 'https' = 'http'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
  });
}

export interface ManagedServer {
  server: Server;
  url: string;
  /** Hand a request to this server's handling (fault injection, the request log) from elsewhere: the Google proxy. */
  dispatch: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

/**
 * A server whose requests go through fault injection and the request log, and whose
 * close() also ends hung and keep-alive connections so tests never leave handles open.
 */
export async function startServer(
  state: EmulatorState,
  classify: (url: URL, req: IncomingMessage) => string,
  handler: Handler,
  port = 0,
  options: { h2c?: boolean; tls?: { cert: string; key: string } } = {},
): Promise<ManagedServer> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req.url);
    // Google's front ends answer a request line no URL parser reads (`//`, `*`) with a 400, and so does this one.
    if (!url) return void send(res, 400, 'Bad Request', { 'content-type': 'text/plain' });
    const endpoint = classify(url, req);
    res.setHeader('date', new Date(state.nowMs()).toUTCString());
    // Whether a bearer credential came with it, in any header a front end reads: for tests of where tokens go.
    const authorization = ['authorization', 'x-serverless-authorization', 'proxy-authorization', 'x-goog-iap-jwt-assertion'].some((h) => req.headers[h] !== undefined);
    res.on('finish', () => state.requests.push({ endpoint, method: req.method ?? 'GET', path: scrubPath(url), status: res.statusCode, at: Date.now(), authorization }));
    const fault = url.pathname.startsWith('/__emulator/') ? undefined : state.takeFault(endpoint);
    const run = () =>
      Promise.resolve()
        .then(() => handler(req, res, url))
        .catch((err: unknown) => answerFailure(res, err));
    if (!fault) return void run();
    if (fault.kind === 'delay') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        run();
      }, fault.ms ?? 5000);
      timers.add(timer);
      return;
    }
    applyFault(fault, req, res);
  };
  // Over TLS (a real hostname, the emulator's CA), HTTP/2 and HTTP/1.1 by ALPN, as Google's front ends serve.
  const server = options.tls ? (createSecureServer({ cert: options.tls.cert, key: options.tls.key, allowHTTP1: true }, onRequest as never) as unknown as Server) : createServer(onRequest);
  // Cloud Run serves HTTP/2 (and h2c end to end for gRPC): the service servers take it on the same port, through
  // node:http2's compatibility API, so the handlers are the same.
  if (options.h2c && !options.tls) shareWithH2c(server, createHttp2Server(onRequest as never));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const url = await listen(server, port, options.tls ? 'https' : 'http');
  return {
    server,
    url,
    dispatch: onRequest,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function applyFault(fault: Fault, req: IncomingMessage, res: ServerResponse): void {
  // Drain the request so the client is not stuck writing its body.
  req.resume();
  switch (fault.kind) {
    case 'hang':
      return; // never answer; close() destroys the socket
    case 'reset':
      return void req.socket.resetAndDestroy();
    case 'status': {
      const status = fault.status ?? 500;
      return send(res, status, googleErrorPage(status, status === 503 ? 'Service Unavailable' : 'Server Error', 'The server encountered an error.'), { 'content-type': 'text/html; charset=UTF-8' });
    }
    case 'retry-after':
      return send(res, fault.status ?? 429, JSON.stringify({ error: 'rate_limit_exceeded', error_description: 'Rate limit exceeded' }), {
        'content-type': 'application/json; charset=utf-8',
        'retry-after': String(fault.retryAfter ?? 1),
      });
    case 'garbage':
      return send(res, 200, '\u0000\u00ff{"access_tok\u0007garbage<<', { 'content-type': 'application/json; charset=utf-8' });
    case 'html200':
      return send(res, 200, '<html><head><title>Sign in to Wi-Fi</title></head><body><form action="/login">Accept the terms to continue</form></body></html>', {
        'content-type': 'text/html',
      });
    case 'truncated': {
      const partial = '{"access_token": "ya29.trunc';
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': '4096' });
      res.write(partial);
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    case 'delay':
      return;
  }
}

function requestUrl(raw = '/'): URL | undefined {
  try {
    // A path like //host/x would be read as a protocol-relative URL against a base: prefix the origin instead.
    return /^https?:\/\//i.test(raw) ? new URL(raw) : new URL(`http://127.0.0.1${raw.startsWith('/') ? raw : `/${raw}`}`);
  } catch {
    return undefined;
  }
}

function scrubPath(url: URL): string {
  const params = new URLSearchParams(url.search);
  for (const key of ['id_token', 'access_token', 'token']) if (params.has(key)) params.set(key, 'REDACTED');
  const query = params.toString();
  return url.pathname + (query ? `?${query}` : '');
}
