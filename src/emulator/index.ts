// startEmulator(): real HTTP servers on 127.0.0.1 standing in for Google's auth surface.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { certsEndpoint } from './certs.ts';
import { readBody, send, startServer, type ManagedServer } from './http.ts';
import { isResourceManagerPath, resourceManagerEndpoint } from './resource-manager.ts';
import { iamEndpoint } from './iam.ts';
import { metadataHandler } from './metadata.ts';
import { tokenEndpoint, tokeninfoEndpoint } from './oauth.ts';
import { normaliseScenario, type Fault, type Scenario } from './scenario.ts';
import { runUrls, serviceHandler, type ServiceIdentity } from './service.ts';
import { startFrontDoor } from './front-door.ts';
import { startGoogleProxy } from './google-proxy.ts';
import { createCertificateAuthority } from '../core/net/certificates.ts';
import { EmulatorState, type RecordedRequest } from './state.ts';
import { externalIdpEndpoint, stsEndpoint } from './sts.ts';
import { authorizedUserFile, serviceAccountKeyFile, writeCredentials, type WrittenCredentials } from './credentials.ts';

export { defaultScenario, type Scenario, type Fault } from './scenario.ts';
export { issuedSecrets } from './state.ts';
export type { WrittenCredentials } from './credentials.ts';

export interface EmulatorUrls {
  /** Base of the Google APIs server; every path below lives on it. */
  google: string;
  token: string;
  iam: string;
  sts: string;
  jwks: string;
  pemCerts: string;
  tokeninfo: string;
  /** The external IdP that hands out subject tokens for workload identity federation. */
  externalToken: string;
  /** Metadata server base (http://127.0.0.1:PORT) and the host:port form GCE_METADATA_HOST takes. */
  metadata: string;
  metadataHost: string;
  /** Local URL of each private service, by name. */
  services: Record<string, string>;
}

export interface Emulator {
  urls: EmulatorUrls;
  state: EmulatorState;
  /** run.app URLs each service stands for (accepted as audiences). */
  serviceRunUrls: Record<string, string[]>;
  /** The emulator's own CA (PEM), which signs the certificate of its real-hostname front door. */
  caPem: string;
  /** The front door (every emulated host name over TLS): `HOST:443:127.0.0.1:PORT` entries for --connect-to. */
  connectTo: string[];
  /** The emulator as an HTTP proxy for Google's real host names and the emulated ones: what HTTPS_PROXY names. */
  proxyUrl: string;
  requests: RecordedRequest[];
  /** Every secret issued so far: tokens, private keys, refresh tokens, client secrets. */
  secrets(): string[];
  grant(resource: { kind: 'service' | 'serviceAccount'; name: string }, role: string, member: string): void;
  revoke(resource: { kind: 'service' | 'serviceAccount'; name: string }, role: string, member: string): void;
  setFaults(faults: Fault[]): void;
  rotateKeys(): void;
  writeCredentials(dir: string): Promise<WrittenCredentials>;
  /** Key file contents for one key of a service account (deleted and disabled ones too). */
  serviceAccountKey(email: string, keyIndex?: number): Record<string, string>;
  /** authorized_user file contents for one user. */
  userCredentials(email: string): Record<string, string>;
  close(): Promise<void>;
}

export interface EmulatorOptions {
  clock?: () => number;
  /** Port for the Google APIs server (overrides the scenario). */
  port?: number;
  /** Port for the metadata server (overrides the scenario): a fixed GCE_METADATA_HOST for containers and CI. */
  metadataPort?: number;
}

export async function startEmulator(scenarioInput?: Partial<Scenario> | Scenario, options: EmulatorOptions = {}): Promise<Emulator> {
  const scenario = normaliseScenario(scenarioInput);
  const state = new EmulatorState(scenario, options.clock);
  const servers: Pick<ManagedServer, 'close'>[] = [];
  try {
    const google = await startServer(state, classifyGoogle, googleRouter(state), options.port ?? scenario.port ?? 0);
    servers.push(google);
    state.googleUrl = google.url;
    const metadata = await startServer(state, () => 'metadata', metadataHandler(state), options.metadataPort ?? scenario.metadata.port ?? 0);
    servers.push(metadata);
    const services: Record<string, string> = {};
    const serviceRunUrls: Record<string, string[]> = {};
    const identities: ServiceIdentity[] = [];
    for (const spec of scenario.services) {
      const identity: ServiceIdentity = { spec, localUrl: '', runUrls: runUrls(state, spec) };
      const server = await startServer(state, () => `service:${spec.name}`, serviceHandler(state, identity), spec.port ?? 0, { h2c: true });
      servers.push(server);
      identity.localUrl = server.url;
      identities.push(identity);
      state.backends.set(spec.name, identity);
      services[spec.name] = server.url;
      serviceRunUrls[spec.name] = identity.runUrls;
    }
    // Constrained to the names it emulates: even a client that trusts it trusts it for nothing else. The key stays in
    // memory; only the certificate is written (ca.pem).
    const ca = createCertificateAuthority({ now: (options.clock ?? Date.now)(), commonName: `idcall emulator CA (${scenario.project.id})`, permittedDns: [...new Set(['googleapis.com', 'google.com', ...identities.flatMap((i) => i.runUrls.map((u) => new URL(u).hostname.split('.').slice(-2).join('.')))])], permittedIps: ['127.0.0.1/32'] });
    const frontDoor = await startFrontDoor(state, identities, ca);
    servers.push(frontDoor.server);
    // Google's real host names for unmodified clients: HTTPS_PROXY points here (google-env.sh).
    const googleProxy = await startGoogleProxy(state, ca, google.dispatch, frontDoor.hostnames, frontDoor.server.dispatch);
    servers.push(googleProxy);
    const urls: EmulatorUrls = {
      google: google.url,
      token: `${google.url}/token`,
      iam: google.url,
      sts: `${google.url}/v1/token`,
      jwks: `${google.url}/oauth2/v3/certs`,
      pemCerts: `${google.url}/oauth2/v1/certs`,
      tokeninfo: `${google.url}/tokeninfo`,
      externalToken: `${google.url}/external/token`,
      metadata: metadata.url,
      metadataHost: metadata.url.replace(/^http:\/\//, ''),
      services,
    };
    let closed = false;
    return {
      urls,
      state,
      serviceRunUrls,
      caPem: ca.certPem,
      connectTo: frontDoor.connectTo,
      proxyUrl: googleProxy.url,
      requests: state.requests,
      secrets: () => [...state.secrets],
      grant: (resource, role, member) => state.grant(resource, role, member),
      revoke: (resource, role, member) => state.revoke(resource, role, member),
      setFaults: (faults) => state.setFaults(faults),
      rotateKeys: () => state.rotateGoogleKeys(),
      writeCredentials: (dir) => writeCredentials(state, urls, dir, { caPem: ca.certPem, connectTo: frontDoor.connectTo, proxyUrl: googleProxy.url }),
      serviceAccountKey: (email, keyIndex) => serviceAccountKeyFile(state, urls, email, keyIndex),
      userCredentials: (email) => authorizedUserFile(state, urls, email),
      close: async () => {
        if (closed) return;
        closed = true;
        await Promise.all(servers.map((s) => s.close()));
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
}

function classifyGoogle(url: URL): string {
  const path = url.pathname;
  if (path === '/token' || path === '/oauth2/v4/token' || path === '/oauth2/v3/token' || path === '/tokeninfo' || path === '/oauth2/v3/tokeninfo') return 'token';
  if (isResourceManagerPath(path)) return 'resource-manager';
  if (path.startsWith('/v1/projects/')) return 'iam';
  if (path.startsWith('/v1/')) return 'sts';
  if (path.startsWith('/external/')) return 'subject';
  if (path.startsWith('/__emulator/')) return 'admin';
  return 'certs';
}

function googleRouter(state: EmulatorState) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    switch (classifyGoogle(url)) {
      case 'token':
        return url.pathname.endsWith('tokeninfo') ? tokeninfoEndpoint(state, req, res, url) : tokenEndpoint(state, req, res);
      case 'iam':
        return iamEndpoint(state, req, res, url);
      case 'resource-manager':
        return resourceManagerEndpoint(state, req, res, url);
      case 'sts':
        return stsEndpoint(state, req, res, url);
      case 'subject':
        return externalIdpEndpoint(state, req, res, url);
      case 'admin':
        return adminEndpoint(state, req, res, url);
      default:
        return certsEndpoint(state, req, res, url);
    }
  };
}

/** Control surface for an emulator running as a separate process (`idcall emulator`). */
async function adminEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const json = (status: number, body: unknown) => send(res, status, JSON.stringify(body), { 'content-type': 'application/json' });
  try {
    const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /__emulator/requests':
        return json(200, state.requests);
      case 'POST /__emulator/faults':
        state.setFaults(normaliseScenario({ faults: body.faults ?? [] }).faults);
        return json(200, { faults: state.faults.length });
      case 'POST /__emulator/rotate-keys':
        state.rotateGoogleKeys();
        return json(200, { kids: state.googleKeys.map((k) => k.kid) });
      case 'POST /__emulator/grant':
        state.grant(body.resource, body.role, body.member);
        return json(200, { ok: true });
      case 'POST /__emulator/revoke':
        state.revoke(body.resource, body.role, body.member);
        return json(200, { ok: true });
      default:
        return json(404, { error: 'unknown emulator control path' });
    }
  } catch (err) {
    return json(400, { error: err instanceof Error ? err.message : String(err) });
  }
}
