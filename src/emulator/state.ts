// What the emulated Google remembers: keys, issued tokens, IAM policies, and a request log.
import { generateSigningKey, numericId, randomToken, signJwt, type SigningKey } from './keys.ts';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import {
  ADC_CLIENT_ID,
  ADC_CLIENT_SECRET,
  DEFAULT_SWITCHES,
  GCLOUD_CLIENT_ID,
  GCLOUD_CLIENT_SECRET,
  type Binding,
  type Fault,
  type Scenario,
  type ServiceAccountSpec,
  type Switches,
  type UserSpec,
} from './scenario.ts';

export interface ServiceAccountKey {
  key: SigningKey;
  disabled: boolean;
  deleted: boolean;
}

export interface ServiceAccount {
  spec: ServiceAccountSpec;
  uniqueId: string;
  keys: ServiceAccountKey[];
}

export interface User {
  spec: UserSpec;
  sub: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

export interface AccessTokenGrant {
  /** IAM member string of who holds the token: `serviceAccount:…`, `user:…`, `principal://…`. */
  member: string;
  email?: string;
  clientId?: string;
  scopes: string[];
  exp: number;
}

export interface RecordedRequest {
  endpoint: string;
  method: string;
  path: string;
  status: number;
  at: number;
  /** A credential came in a header a front end reads (Authorization, X-Serverless-Authorization, Proxy-Authorization). */
  authorization: boolean;
}

export const OAUTH_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';

const everyState = new Set<EmulatorState>();

/** Every secret any emulator in this process has issued: for canary checks over all of a test suite's output. */
export function issuedSecrets(): string[] {
  return [...everyState].flatMap((state) => [...state.secrets]);
}

export class EmulatorState {
  readonly scenario: Scenario;
  readonly switches: Required<Switches>;
  /** Google's ID-token signing keys; [0] signs, the others are still published (rotation). */
  googleKeys: SigningKey[];
  iapKey: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  /** The last x-goog-iap-jwt-assertion IAP sent each app (by service name): what an app behind IAP verifies. */
  iapAssertions = new Map<string, string>();
  /** Services by name, for a gateway's backend calls: their local URL and production URLs. */
  backends = new Map<string, { localUrl: string; runUrls: string[] }>();
  /** The external identity provider the workload-identity pool trusts (a CI system, another cloud). */
  readonly externalIdpKey: SigningKey;
  readonly serviceAccounts = new Map<string, ServiceAccount>();
  readonly users = new Map<string, User>();
  readonly accessTokens = new Map<string, AccessTokenGrant>();
  readonly requests: RecordedRequest[] = [];
  /** Every secret handed out, so tests can assert none of them leaks into output. */
  readonly secrets = new Set<string>();
  faults: (Fault & { used: number })[];
  googleUrl = '';
  private readonly clock: () => number;

  constructor(scenario: Scenario, clock: () => number = Date.now) {
    this.scenario = scenario;
    this.switches = { ...DEFAULT_SWITCHES, ...scenario.switches };
    this.clock = clock;
    this.googleKeys = [generateSigningKey('accounts.google.com'), generateSigningKey('accounts.google.com')];
    this.externalIdpKey = generateSigningKey('external-idp.example');
    // IAP signs what it passes to the app with ES256 keys of its own, a 6-character kid (§11.4).
    const iap = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.iapKey = { kid: randomBytes(4).toString('base64url').slice(0, 6), privateKey: iap.privateKey, publicKey: iap.publicKey };
    for (const spec of scenario.serviceAccounts) this.addServiceAccount(spec);
    for (const spec of scenario.users) this.addUser(spec);
    this.faults = scenario.faults.map((f) => ({ ...f, used: 0 }));
    everyState.add(this);
  }

  /** Seconds since the epoch on Google's side (the scenario may put Google's clock off from ours). */
  now(): number {
    return Math.floor(this.clock() / 1000) + this.switches.clockOffsetSeconds;
  }

  nowMs(): number {
    return this.clock() + this.switches.clockOffsetSeconds * 1000;
  }

  addServiceAccount(spec: ServiceAccountSpec): ServiceAccount {
    const keys = (spec.keys ?? []).map((k) => ({
      key: generateSigningKey(spec.email),
      disabled: Boolean(k.disabled),
      deleted: Boolean(k.deleted),
    }));
    for (const k of keys) this.secrets.add(k.key.privateKeyPem);
    const account = { spec, uniqueId: numericId(spec.email), keys };
    this.serviceAccounts.set(spec.email, account);
    return account;
  }

  /** A refresh token for the user at an OAuth client: the scenario's (ADC login by default), or gcloud's for a CLI login. */
  addUser(spec: UserSpec, client?: string): User {
    const clientId = client ?? spec.clientId ?? ADC_CLIENT_ID;
    const clientSecret = clientId === ADC_CLIENT_ID ? ADC_CLIENT_SECRET : clientId === GCLOUD_CLIENT_ID ? GCLOUD_CLIENT_SECRET : randomToken('GOCSPX-', 18);
    const user: User = { spec, sub: numericId(spec.email), clientId, clientSecret, refreshToken: randomToken('1//0e', 60) };
    this.users.set(user.refreshToken, user);
    this.secrets.add(user.refreshToken);
    // The two gcloud client secrets are public (shipped in gcloud), so they are not secrets to scan for.
    if (clientId !== ADC_CLIENT_ID && clientId !== GCLOUD_CLIENT_ID) this.secrets.add(clientSecret);
    return user;
  }

  findUserByEmail(email: string): User | undefined {
    return [...this.users.values()].find((u) => u.spec.email === email);
  }

  findServiceAccount(idOrEmail: string): ServiceAccount | undefined {
    return this.serviceAccounts.get(idOrEmail) ?? [...this.serviceAccounts.values()].find((s) => s.uniqueId === idOrEmail);
  }

  issueAccessToken(grant: Omit<AccessTokenGrant, 'exp'>, prefix = 'ya29.c.'): { token: string; expiresIn: number } {
    const token = randomToken(prefix, 90);
    const expiresIn = this.switches.tokenLifetimeSeconds;
    this.accessTokens.set(token, { ...grant, exp: this.now() + expiresIn });
    this.secrets.add(token);
    return { token, expiresIn };
  }

  /** An ID token as Google signs it: RS256 with the current key, one hour (or the scenario's) lifetime. */
  signIdToken(claims: Record<string, unknown>): string {
    const iat = this.now();
    const token = signJwt(this.googleKeys[0]!, { iss: 'https://accounts.google.com', iat, exp: iat + this.switches.tokenLifetimeSeconds, ...claims });
    this.secrets.add(token);
    return token;
  }

  /** A subject token from the external IdP, as a CI system or another cloud would hand a workload. */
  externalSubjectToken(audience: string, subject = 'repo:acme/app:ref:refs/heads/main', lifetimeSeconds = 3600): string {
    const iat = this.now();
    const token = signJwt(this.externalIdpKey, { iss: this.externalIssuer(), aud: audience, sub: subject, iat, exp: iat + lifetimeSeconds });
    this.secrets.add(token);
    return token;
  }

  externalIssuer(): string {
    return `${this.googleUrl}/external`;
  }

  rotateGoogleKeys(): void {
    this.googleKeys = [generateSigningKey('accounts.google.com'), this.googleKeys[0]!];
  }

  providerResource(poolId: string, providerId: string): string {
    return `//iam.googleapis.com/projects/${this.scenario.project.number}/locations/global/workloadIdentityPools/${poolId}/providers/${providerId}`;
  }

  /** Does `member` hold one of `roles` in `bindings`? principalSet wildcards match principals of the same pool. */
  hasRole(bindings: Binding[] | undefined, roles: string[], member: string): boolean {
    return (bindings ?? []).some((b) => roles.includes(b.role) && b.members.some((m) => memberMatches(m, member)));
  }

  grant(resource: { kind: 'service' | 'serviceAccount'; name: string }, role: string, member: string): void {
    const holder = resource.kind === 'service' ? this.scenario.services.find((s) => s.name === resource.name) : this.serviceAccounts.get(resource.name)?.spec;
    if (!holder) throw new Error(`no ${resource.kind} named ${resource.name}`);
    holder.bindings ??= [];
    let binding = holder.bindings.find((b) => b.role === role);
    if (!binding) holder.bindings.push((binding = { role, members: [] }));
    if (!binding.members.includes(member)) binding.members.push(member);
  }

  revoke(resource: { kind: 'service' | 'serviceAccount'; name: string }, role: string, member: string): void {
    const holder = resource.kind === 'service' ? this.scenario.services.find((s) => s.name === resource.name) : this.serviceAccounts.get(resource.name)?.spec;
    const binding = holder?.bindings?.find((b) => b.role === role);
    if (binding) binding.members = binding.members.filter((m) => m !== member);
  }

  /** The fault that applies to the next request at `endpoint`, counting it as used. */
  takeFault(endpoint: string): Fault | undefined {
    const fault = this.faults.find(
      (f) => (f.endpoint === endpoint || (f.endpoint === 'service' && endpoint.startsWith('service:'))) && (f.times === undefined || f.used < f.times),
    );
    if (fault) fault.used++;
    return fault;
  }

  setFaults(faults: Fault[]): void {
    this.faults = faults.map((f) => ({ ...f, used: 0 }));
  }
}

function memberMatches(pattern: string, member: string): boolean {
  if (pattern === member || pattern === 'allUsers') return true;
  if (pattern === 'allAuthenticatedUsers') return member !== '';
  if (pattern.startsWith('principalSet://') && pattern.endsWith('/*') && member.startsWith('principal://')) {
    const poolPrefix = pattern.slice('principalSet://'.length, -1);
    return member.slice('principal://'.length).startsWith(poolPrefix + 'subject/');
  }
  return false;
}
