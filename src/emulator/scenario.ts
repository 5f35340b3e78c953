// The scenario file: what the emulated Google project contains. Documented in docs/emulator.md.

export type EndpointName = 'metadata' | 'token' | 'iam' | 'sts' | 'certs' | 'subject' | `service:${string}` | 'service';

export type FaultKind = 'hang' | 'delay' | 'status' | 'garbage' | 'html200' | 'truncated' | 'reset' | 'retry-after';

export interface Fault {
  endpoint: EndpointName;
  kind: FaultKind;
  /** delay: milliseconds before answering normally. */
  ms?: number;
  /** status and retry-after: the HTTP status sent (retry-after defaults to 429). */
  status?: number;
  /** retry-after: seconds put in the Retry-After header. */
  retryAfter?: number;
  /** How many requests the fault applies to before the endpoint recovers; default: all. */
  times?: number;
}

export interface Binding {
  role: string;
  members: string[];
}

export interface ServiceAccountSpec {
  email: string;
  displayName?: string;
  disabled?: boolean;
  /** Keys of this service account; a disabled or deleted key signs assertions Google rejects. */
  keys?: { disabled?: boolean; deleted?: boolean }[];
  /** IAM policy on the service account (roles/iam.serviceAccountTokenCreator, roles/iam.workloadIdentityUser, …). */
  bindings?: Binding[];
}

export interface UserSpec {
  email: string;
  /** OAuth client the refresh token belongs to; default: gcloud's application-default login client. */
  clientId?: string;
  revoked?: boolean;
  /** Workspace session control: refreshes fail with invalid_rapt. */
  reauthRequired?: boolean;
  hd?: string;
}

export interface ProviderSpec {
  id: string;
  /** Issuer of the external OIDC tokens; the emulator's own external IdP by default. */
  issuer?: string;
  /** Audiences accepted in the subject token; default: the provider's resource name with and without "https:". */
  allowedAudiences?: string[];
  disabled?: boolean;
}

export interface PoolSpec {
  id: string;
  providers: ProviderSpec[];
  disabled?: boolean;
}

/** IAP in front of an app (google-wire.md §11). */
export interface IapSpec {
  /** What IAP fronts: an App Engine app, a load balancer's backend service, or a Cloud Run service directly. */
  frontEnd: 'app-engine' | 'backend-service' | 'cloud-run';
  /** The OAuth client ID of the IAP resource: the audience a programmatic caller's ID token must carry. */
  clientId: string;
  /** A Google-managed client: programmatic access is blocked until the client is in programmaticClients. */
  googleManagedClient?: boolean;
  /** IapSettings.accessSettings.oauthSettings.programmaticClients: more accepted audiences. */
  programmaticClients?: string[];
  /** Backend service name (backend-service front end), for grant commands. */
  backendService?: string;
  /** The host name a client calls, e.g. demo-project.uc.r.appspot.com or app.example.com. */
  host?: string;
}

/** API Gateway / ESPv2 (§13): which issuers and audiences the API config accepts. */
export interface GatewaySpec {
  /** x-google-issuer values; default https://accounts.google.com. */
  issuers?: string[];
  /** x-google-audiences; default https://SERVICE_NAME only. */
  audiences?: string[];
  /** The managed service name, e.g. my-api-abc123.apigateway.demo-project.cloud.goog. */
  serviceName?: string;
  /** The gateway's host name, e.g. my-gateway-abc123.uc.gateway.dev. */
  host?: string;
  /** A service of the scenario the gateway calls with backend auth (x-google-backend); without one it echoes. */
  backend?: string;
  /** The gateway's service account (--backend-auth-service-account), whose ID token the backend sees. */
  serviceAccount?: string;
}

export interface ServiceSpec {
  name: string;
  /** What front end this is (default cloud_run): a Cloud Function, an app behind IAP, or an API Gateway. */
  kind?: 'cloud_run' | 'function' | 'iap' | 'api_gateway';
  /** Cloud Functions generation (kind function; default 2). */
  generation?: 1 | 2;
  iap?: IapSpec;
  gateway?: GatewaySpec;
  region?: string;
  /** Accepted audiences in addition to the service's own URLs (`--add-custom-audiences`). */
  customAudiences?: string[];
  bindings?: Binding[];
  /** `--no-invoker-iam-check`: any valid token is let through. */
  invokerIamCheck?: boolean;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
}

export interface Switches {
  /** Status Cloud Run answers for a Google access token sent as bearer (reports disagree). */
  accessTokenStatus?: 401 | 403;
  /** Accept an ID token whose aud is the service URL with a trailing slash. */
  acceptTrailingSlashAudience?: boolean;
  /** Accept ID tokens whose aud is the gcloud CLI client id (`gcloud auth print-identity-token` without --audiences). */
  acceptGcloudClientIdAudience?: boolean;
  /** The same for service-account tokens (a VM's `gcloud auth print-identity-token`): unconfirmed (§7.1), default off. */
  acceptGcloudClientIdAudienceFromServiceAccounts?: boolean;
  /** Accept user ID tokens whose aud is the ADC login client id (reported to work by cloud-run-proxy users). */
  acceptAdcClientIdAudience?: boolean;
  /** Include email/email_verified in metadata ID tokens with format=standard: GCE does not (§14.2); Cloud Run may (unconfirmed). */
  emailInStandardMetadataToken?: boolean;
  /** Lifetime of every issued token in seconds (Google: 3600). */
  tokenLifetimeSeconds?: number;
  /** Offset of the emulated Google clock from this machine's, in seconds (Date headers and iat/exp). */
  clockOffsetSeconds?: number;
}

export interface GkeMetadataSpec {
  /** Token answers without Metadata-Flavor, as a 2019 capture shows (default true). */
  tokenWithoutFlavor?: boolean;
  /** The pod's first request waits this long (ms): the metadata server is not ready at pod start. */
  startupDelayMs?: number;
  /** The Google service account lacks roles/iam.workloadIdentityUser for the pod's KSA: token requests get IAM's 403. */
  workloadIdentityUserMissing?: boolean;
  /** Answer identity?format=full with 400 (reported, unconfirmed). */
  formatFullRejected?: boolean;
}

export interface MetadataSpec {
  /** Service account attached to the instance; absent means "Service account not enabled". */
  serviceAccount?: string;
  instanceName?: string;
  instanceId?: string;
  zone?: string;
  universeDomain?: string | null;
  /** The instance's access scopes; default cloud-platform. A VM with default scopes has no cloud-platform (§15.1). */
  scopes?: string[];
  /** GKE's metadata server (Workload Identity, §14.1) instead of Compute Engine's. */
  gke?: GkeMetadataSpec;
  port?: number;
}

export interface Scenario {
  project: { id: string; number: string };
  serviceAccounts: ServiceAccountSpec[];
  users: UserSpec[];
  pools: PoolSpec[];
  services: ServiceSpec[];
  metadata: MetadataSpec;
  faults: Fault[];
  switches: Switches;
  /** Port of the Google APIs server (token, IAM Credentials, STS, certificates); 0 picks one. */
  port?: number;
}

export { GCLOUD_CLIENT_ID } from '../core/endpoints.ts';
export const GCLOUD_CLIENT_SECRET = 'ZmssLNjJy2998hD4CTg2ejr2';
export const ADC_CLIENT_ID = '764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com';
export const ADC_CLIENT_SECRET = 'd-FL95Q19q7MQmFpd7hHD0Ty';

export const DEFAULT_SWITCHES: Required<Switches> = {
  accessTokenStatus: 401,
  acceptTrailingSlashAudience: false,
  acceptGcloudClientIdAudience: true,
  acceptGcloudClientIdAudienceFromServiceAccounts: false,
  acceptAdcClientIdAudience: true,
  // GCE's format=standard tokens have no email (§14.2); Cloud Run's may (unconfirmed): a switch, off as on GCE.
  emailInStandardMetadataToken: false,
  tokenLifetimeSeconds: 3600,
  clockOffsetSeconds: 0,
};

/** The story the Cloud Run tutorials tell: a caller, a runtime identity, a user, a pool, two private services. */
export function defaultScenario(): Scenario {
  const project = { id: 'demo-project', number: '123456789012' };
  const sa = (name: string) => `${name}@${project.id}.iam.gserviceaccount.com`;
  const pool = `principalSet://iam.googleapis.com/projects/${project.number}/locations/global/workloadIdentityPools/ci-pool/*`;
  return {
    project,
    serviceAccounts: [
      { email: sa('caller'), displayName: 'Service-to-service caller', keys: [{}] },
      { email: sa('runtime'), displayName: 'Compute runtime identity', keys: [] },
      {
        email: sa('invoker'),
        displayName: 'Impersonation target',
        keys: [],
        bindings: [
          { role: 'roles/iam.serviceAccountTokenCreator', members: ['user:alice@example.com'] },
          { role: 'roles/iam.workloadIdentityUser', members: [pool] },
        ],
      },
      { email: sa('no-access'), displayName: 'Nobody may impersonate this one', keys: [{}] },
    ],
    users: [{ email: 'alice@example.com' }, { email: 'bob@example.com' }],
    pools: [{ id: 'ci-pool', providers: [{ id: 'ci-provider' }] }],
    services: [
      {
        name: 'hello',
        bindings: [{ role: 'roles/run.invoker', members: [`serviceAccount:${sa('caller')}`, `serviceAccount:${sa('invoker')}`, `serviceAccount:${sa('runtime')}`] }],
      },
      { name: 'private', bindings: [] },
      // Cloud Functions: 1st gen accepts only the function URL as audience and grants roles/cloudfunctions.invoker;
      // 2nd gen is a Cloud Run service with the function URL as a custom audience.
      { name: 'fn1', kind: 'function', generation: 1, bindings: [{ role: 'roles/cloudfunctions.invoker', members: [`serviceAccount:${sa('caller')}`, `serviceAccount:${sa('invoker')}`] }] },
      { name: 'fn2', kind: 'function', generation: 2, bindings: [{ role: 'roles/run.invoker', members: [`serviceAccount:${sa('caller')}`, `serviceAccount:${sa('invoker')}`] }] },
      {
        name: 'iap-app',
        kind: 'iap',
        iap: { frontEnd: 'app-engine', clientId: `${project.number}-iapappengine0000000000000.apps.googleusercontent.com`, host: `${project.id}.uc.r.appspot.com` },
        bindings: [{ role: 'roles/iap.httpsResourceAccessor', members: [`serviceAccount:${sa('caller')}`, `serviceAccount:${sa('invoker')}`] }],
      },
      {
        name: 'iap-lb',
        kind: 'iap',
        iap: { frontEnd: 'backend-service', clientId: '369001918367-googlemanaged00000000000000.apps.googleusercontent.com', googleManagedClient: true, backendService: 'web-backend', host: 'app.example.com' },
        bindings: [{ role: 'roles/iap.httpsResourceAccessor', members: [`serviceAccount:${sa('caller')}`] }],
      },
      { name: 'gateway', kind: 'api_gateway', gateway: { serviceName: `hello-api-0a1b2c3d4e5f6.apigateway.${project.id}.cloud.goog`, host: 'hello-gateway-0a1b2c3d.uc.gateway.dev', backend: 'hello', serviceAccount: sa('runtime') } },
    ],
    metadata: { serviceAccount: sa('runtime'), instanceName: 'demo-vm', zone: 'us-central1-c' },
    faults: [],
    switches: {},
  };
}

const SCENARIO_KEYS = ['project', 'serviceAccounts', 'users', 'pools', 'services', 'metadata', 'faults', 'switches', 'port'];

/** Fill defaults and check the shape, so a typo in a scenario file is one clear error, not a crash mid-request. */
export function normaliseScenario(input: unknown, where = 'scenario'): Scenario {
  if (input === undefined) return defaultScenario();
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ScenarioError(`${where}: must be a JSON object`);
  const raw = input as Partial<Scenario>;
  // A misspelt key would silently leave the default in place: name it instead.
  const unknown = Object.keys(raw).filter((key) => !SCENARIO_KEYS.includes(key));
  if (unknown.length) throw new ScenarioError(`${where}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${SCENARIO_KEYS.join(', ')})`);
  const base = defaultScenario();
  const scenario: Scenario = {
    project: raw.project ?? base.project,
    serviceAccounts: raw.serviceAccounts ?? base.serviceAccounts,
    users: raw.users ?? base.users,
    pools: raw.pools ?? base.pools,
    services: raw.services ?? base.services,
    metadata: raw.metadata ?? base.metadata,
    faults: raw.faults ?? [],
    switches: raw.switches ?? {},
    ...(raw.port !== undefined ? { port: raw.port } : {}),
  };
  if (typeof scenario.project.id !== 'string' || !/^\d+$/.test(String(scenario.project.number))) {
    throw new ScenarioError(`${where}: project needs a string "id" and a numeric "number"`);
  }
  scenario.project.number = String(scenario.project.number);
  for (const [field, list] of Object.entries({ serviceAccounts: scenario.serviceAccounts, users: scenario.users, pools: scenario.pools, services: scenario.services, faults: scenario.faults })) {
    if (!Array.isArray(list)) throw new ScenarioError(`${where}: "${field}" must be an array`);
  }
  scenario.serviceAccounts.forEach((s, i) => {
    if (typeof s?.email !== 'string' || !s.email.includes('@')) throw new ScenarioError(`${where}: serviceAccounts[${i}].email must be an email address`);
  });
  scenario.users.forEach((u, i) => {
    if (typeof u?.email !== 'string' || !u.email.includes('@')) throw new ScenarioError(`${where}: users[${i}].email must be an email address`);
  });
  scenario.services.forEach((s, i) => {
    if (typeof s?.name !== 'string' || !/^[a-z][-a-z0-9]{0,48}$/.test(s.name)) throw new ScenarioError(`${where}: services[${i}].name must be a Cloud Run service name (lower-case letters, digits, hyphens)`);
  });
  const kinds: FaultKind[] = ['hang', 'delay', 'status', 'garbage', 'html200', 'truncated', 'reset', 'retry-after'];
  scenario.faults.forEach((f, i) => {
    if (!kinds.includes(f?.kind)) throw new ScenarioError(`${where}: faults[${i}].kind must be one of ${kinds.join(', ')}`);
    if (typeof f.endpoint !== 'string') throw new ScenarioError(`${where}: faults[${i}].endpoint must be a string`);
  });
  return scenario;
}

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}
