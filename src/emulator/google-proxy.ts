// The emulator as an HTTP proxy (google-wire.md, issue 15): a client that is told only HTTPS_PROXY and a CA reaches
// Google's real host names (oauth2, iamcredentials, sts, www.googleapis.com, accounts.google.com) and every host the
// emulator emulates, with TLS terminated by certificates from the emulator's CA; every other host is refused, as the
// emulator is offline by design. CONNECT for https, absolute-form for plain http.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from '../core/net/certificates.ts';
import { listen, send, type ManagedServer } from './http.ts';

type Dispatch = ManagedServer['dispatch'];
import type { EmulatorState } from './state.ts';
import { hostOf } from './front-door.ts';

/** Google's own endpoints the emulator answers for. */
export const GOOGLE_HOSTS = ['oauth2.googleapis.com', 'iamcredentials.googleapis.com', 'sts.googleapis.com', 'www.googleapis.com', 'accounts.google.com', 'cloudresourcemanager.googleapis.com'];

export interface GoogleProxy {
  /** http://127.0.0.1:PORT: what HTTPS_PROXY names. */
  url: string;
  close(): Promise<void>;
}

const OFFLINE = (host: string) => `The idcall emulator is offline by design: ${host} is not a host it emulates (Google's auth endpoints and the scenario's services only).`;

/**
 * `google`: the handler of Google's endpoints (routed by path, as on the emulator's own port); `service`: the
 * handler for the emulated services' host names (the TLS front door's router), or null for a host it does not know.
 */
export async function startGoogleProxy(state: EmulatorState, ca: CertificateAuthority, google: Dispatch, serviceHosts: string[], service: Dispatch): Promise<GoogleProxy> {
  const known = new Set([...GOOGLE_HOSTS, ...serviceHosts]);
  const contexts = new Map<string, SecureContext>();
  const contextFor = (host: string): SecureContext => {
    let context = contexts.get(host);
    if (!context) {
      const leaf = ca.issue([host], { now: Date.now() });
      contexts.set(host, (context = createSecureContext({ cert: leaf.certPem, key: leaf.keyPem })));
    }
    return context;
  };
  // Into the same handling as the emulator's own ports, so requests through the proxy are logged and take faults too.
  const route: Dispatch = (req, res) => (GOOGLE_HOSTS.includes(hostOf(req)) ? google(req, res) : service(req, res));
  // The TLS side: one server that never listens; each accepted CONNECT tunnel is handed to it as a connection.
  const tls = createSecureServer({ allowHTTP1: true, SNICallback: (name, cb) => (known.has(name.toLowerCase()) ? cb(null, contextFor(name.toLowerCase())) : cb(new Error(`unknown host ${name}`))) }, (req, res) => route(req as never, res as never));
  tls.on('tlsClientError', () => {});
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    // Absolute-form plain http: only to hosts it knows, answered as over TLS.
    let target: URL;
    try {
      target = new URL(String(req.url));
    } catch {
      return send(res, 400, 'This is a proxy: send absolute-form requests (HTTP_PROXY) or CONNECT (HTTPS_PROXY).', { 'content-type': 'text/plain' });
    }
    if (!known.has(target.hostname)) return send(res, 403, OFFLINE(target.hostname), { 'content-type': 'text/plain' });
    req.headers.host = target.host;
    req.url = target.pathname + target.search;
    route(req, res);
  });
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const [host = '', port = '443'] = String(req.url ?? '').split(':');
    socket.on('error', () => {});
    if (!known.has(host.toLowerCase()) || port !== '443') {
      const body = OFFLINE(host);
      return void socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n', () => {
      if (head.length) socket.unshift(head);
      tls.emit('connection', socket);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  void state;
  const url = await listen(server, 0);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
