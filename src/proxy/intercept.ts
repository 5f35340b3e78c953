// --intercept-tls: a CONNECT to an allowlisted host is answered with TLS from a leaf of the proxy's CA (picked by the
// client's SNI, for allowlisted names only), and the negotiated protocol picks the path: HTTP/1.1 requests to the
// forward handler as https://HOST requests, HTTP/2 streams (gRPC over TLS among them) to the relay --h2c uses, one per
// audience. Either way the token is added exactly as in plain forward mode.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import { defaultAudience, kindFromHost } from '../core/target-kind.ts';
import { hostAllowed, type DestinationGuard } from './guards.ts';
import { createH2Relay, type H2cOptions, type H2Relay } from './h2c.ts';

export interface Interceptor {
  /** Take over a CONNECT tunnel already answered with 200. */
  accept(client: Socket, head: Buffer): void;
  close(): void;
}

export interface InterceptorOptions {
  allowHosts: string[];
  guard: DestinationGuard;
  /** A refusal for a stream another site's page made (pageRequestAccepted), or null. */
  pageRefused: (headers: IncomingHttpHeaders, origin: URL) => { error: number; code: string; message: string } | null;
  leafFor: (host: string) => SecureContext;
  /** The forward handler, for an HTTP/1.1 request whose URL is now absolute (https://HOST/…). */
  http1: (req: IncomingMessage, res: ServerResponse) => void;
  relayOptions: (origin: URL, audience: string) => H2cOptions;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;

export function createInterceptor(options: InterceptorOptions): Interceptor {
  const relays = new Map<string, H2Relay>();
  const h1 = createServer((req, res) => {
    req.url = `https://${String(req.headers.host ?? '')}${req.url?.startsWith('/') ? req.url : '/'}`;
    options.http1(req, res);
  });
  const h2 = createHttp2Server();
  h2.on('sessionError', () => {});
  h2.on('stream', (stream, headers, flags) => {
    stream.on('error', () => {});
    const authority = String(headers[':authority'] ?? '');
    // Inside a tunnel to an allowed host, a stream for another host is misdirected, not relayed.
    if (!hostAllowed(options.allowHosts, authority)) return void stream.respond({ ':status': 421 }, { endStream: true });
    const origin = new URL(`https://${authority}`);
    if (options.guard.refuses(origin.hostname, Number(origin.port || 443))) return void stream.respond({ ':status': 403 }, { endStream: true });
    const refused = options.pageRefused(headers, origin);
    if (refused) {
      stream.respond({ ':status': refused.error, 'content-type': 'application/json', 'x-idcall-proxy': 'error' });
      return void stream.end(JSON.stringify({ error: { code: refused.code, message: refused.message } }));
    }
    // The audience by the rule every path uses (a cloudfunctions.net URL keeps its function's name): a relay each.
    const audience = defaultAudience(new URL(String(headers[':path'] ?? '/'), origin), kindFromHost(origin.hostname)).audience;
    let relay = relays.get(audience);
    if (!relay) {
      relay = createH2Relay(options.relayOptions(origin, audience));
      if (relays.size < 1000) relays.set(audience, relay);
    }
    relay.handle(stream, headers, flags);
  });
  const front = createTlsServer(
    {
      ALPNProtocols: ['h2', 'http/1.1'],
      // A tunnel that never starts its handshake is given up after this, not Node's default two minutes.
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      SNICallback: (name, cb) => (hostAllowed(options.allowHosts, name) ? cb(null, options.leafFor(name.toLowerCase())) : cb(new Error(`${name} is not an allowed host`))),
    },
    (socket) => {
      socket.on('error', () => socket.destroy());
      (socket.alpnProtocol === 'h2' ? h2 : h1).emit('connection', socket);
    },
  );
  front.on('tlsClientError', () => {});
  return {
    accept(client, head) {
      // node:http's sockets are half-open: a client that closes before or just after the handshake would leave its
      // socket in CLOSE-WAIT for good (measured: every such tunnel, one file descriptor each). Closing with it frees it.
      client.allowHalfOpen = false;
      if (head.length) client.unshift(head);
      front.emit('connection', client);
    },
    close() {
      for (const relay of relays.values()) relay.close();
    },
  };
}
