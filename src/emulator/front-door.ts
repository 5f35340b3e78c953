// The emulated services under their real host names, over TLS: one listener for every host the emulator emulates
// (run.app, cloudfunctions.net, appspot.com, gateway.dev, an IAP load balancer's host), with a certificate from the
// emulator's own CA, routing by Host (and, for Cloud Functions, by the function name in the path). Clients reach it
// with curl's --connect-to (idcall's IDCALL_CONNECT_TO), so URL, Host, SNI and audience are all production's.
import type { IncomingMessage } from 'node:http';
import type { CertificateAuthority } from '../core/net/certificates.ts';
import { send, startServer, type Handler, type ManagedServer } from './http.ts';
import { serviceHandler, type ServiceIdentity } from './service.ts';
import type { EmulatorState } from './state.ts';

export interface FrontDoor {
  server: ManagedServer;
  /** Every emulated host name. */
  hostnames: string[];
  /** `HOST:443:127.0.0.1:PORT` for each emulated host name: curl's --connect-to, idcall's IDCALL_CONNECT_TO. */
  connectTo: string[];
}

/** The host a request names (HTTP/2's :authority or Host), lower-cased and without its port. */
export const hostOf = (req: IncomingMessage) => String(req.headers[':authority'] ?? req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();

export async function startFrontDoor(state: EmulatorState, identities: ServiceIdentity[], ca: CertificateAuthority): Promise<FrontDoor> {
  const routes = identities.map((identity) => ({ identity, handler: serviceHandler(state, identity), hosts: identity.runUrls.map((u) => new URL(u)) }));
  const pick = (req: IncomingMessage, url: URL) => {
    const host = hostOf(req);
    const fn = url.pathname.split('/').find(Boolean);
    // A cloudfunctions.net host is shared by a project's functions in a region: the path names the function.
    return routes.find((r) => r.hosts.some((h) => h.hostname === host && (h.pathname === '/' || h.pathname === `/${fn}`)));
  };
  const hostnames = [...new Set(routes.flatMap((r) => r.hosts.map((h) => h.hostname)))];
  const handler: Handler = (req, res, url) => {
    const route = pick(req, url);
    if (!route) return send(res, 404, `The requested URL ${url.pathname} was not found on this server.`, { 'content-type': 'text/html; charset=UTF-8', server: 'Google Frontend' });
    return route.handler(req, res, url);
  };
  // This machine's clock, not the emulated Google one (which a scenario may offset): the client checks validity.
  const cert = ca.issue([...hostnames, '127.0.0.1'], { now: Date.now() });
  const server = await startServer(state, (url, req) => (pick(req, url) ? `service:${pick(req, url)!.identity.spec.name}` : 'service'), handler, 0, { tls: { cert: cert.certPem, key: cert.keyPem } });
  const port = new URL(server.url).port;
  return { server, hostnames, connectTo: hostnames.map((h) => `${h}:443:127.0.0.1:${port}`) };
}
