// `--write-credentials DIR`: one ready credential file per ADC type, each pointing at this emulator.
import { join } from 'node:path';
import { privateDirectory, writePrivateFile } from './private-files.ts';
import { writeGcloudStore, type StoredAccount } from './gcloud-store.ts';
import { GCLOUD_CLIENT_ID } from './scenario.ts';
import type { EmulatorState } from './state.ts';
import type { EmulatorUrls } from './index.ts';

export interface WrittenCredentials {
  dir: string;
  files: {
    serviceAccount?: string;
    authorizedUser?: string;
    impersonated?: string;
    externalAccount?: string;
    subjectToken?: string;
    /** A gcloud configuration directory (CLOUDSDK_CONFIG) with ADC and an active account. */
    gcloudConfig?: string;
    /** The emulator CA's certificate (IDCALL_CACERT): trust it to call the emulated services under their real names. */
    ca?: string;
    /** Credential files with Google's real URLs, for the proxy environment (google-env.sh). */
    google?: string;
  };
  /** Environment to export so that idcall and Google's libraries talk to the emulator. */
  env: Record<string, string>;
  /** The proxy environment (google-env.sh): unmodified clients reach the emulator under Google's host names. */
  googleEnv?: Record<string, string>;
}

/** A service-account key file for one key of one account (deleted and disabled keys included, for failure tests). */
export function serviceAccountKeyFile(state: EmulatorState, urls: EmulatorUrls, email: string, keyIndex = 0): Record<string, string> {
  const account = state.serviceAccounts.get(email);
  const key = account?.keys[keyIndex];
  if (!account || !key) throw new Error(`no key ${keyIndex} for ${email}`);
  return {
    type: 'service_account',
    project_id: state.scenario.project.id,
    private_key_id: key.key.kid,
    private_key: key.key.privateKeyPem,
    client_email: email,
    client_id: account.uniqueId,
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: urls.token,
    auth_provider_x509_cert_url: urls.pemCerts,
    client_x509_cert_url: `${urls.google}/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  };
}

/** A gcloud-style authorized_user file for one user (revoked and reauth users included). */
export function authorizedUserFile(state: EmulatorState, urls: EmulatorUrls, email: string): Record<string, string> {
  const user = state.findUserByEmail(email);
  if (!user) throw new Error(`no user ${email}`);
  return {
    account: '',
    client_id: user.clientId,
    client_secret: user.clientSecret,
    quota_project_id: state.scenario.project.id,
    refresh_token: user.refreshToken,
    token_uri: urls.token,
    type: 'authorized_user',
    universe_domain: 'googleapis.com',
  };
}

/** Google's own URLs, for the credential files of the proxy environment (google/): no rewrite of any endpoint. */
function googleUrls(urls: EmulatorUrls): EmulatorUrls {
  return { ...urls, token: 'https://oauth2.googleapis.com/token', iam: 'https://iamcredentials.googleapis.com', sts: 'https://sts.googleapis.com/v1/token', jwks: 'https://www.googleapis.com/oauth2/v3/certs', pemCerts: 'https://www.googleapis.com/oauth2/v1/certs', tokeninfo: 'https://oauth2.googleapis.com/tokeninfo' };
}

/**
 * `frontDoor`: the CA certificate, the --connect-to entries of the real-hostname TLS listener, and the proxy for
 * Google's host names. With a proxy, DIR/google/ gets credential files carrying Google's real URLs and
 * DIR/google-env.sh the environment unmodified clients need: proxy, CA and metadata variables, nothing else.
 */
export async function writeCredentials(state: EmulatorState, urls: EmulatorUrls, dir: string, frontDoor?: { caPem: string; connectTo: string[]; proxyUrl?: string }, options: { envFile?: boolean } = {}): Promise<WrittenCredentials> {
  await privateDirectory(dir, { top: true });
  const files: WrittenCredentials['files'] = {};
  const write = (name: string, content: object | string, inDir = dir) => writePrivateFile(inDir, name, typeof content === 'string' ? content : JSON.stringify(content, null, 2) + '\n');
  const { project } = state.scenario;
  const impersonationUrl = (email: string) => `${urls.iam}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`;

  const keyed = [...state.serviceAccounts.values()].find((sa) => sa.keys.some((k) => !k.disabled && !k.deleted) && !sa.spec.disabled);
  const key = keyed?.keys.find((k) => !k.disabled && !k.deleted);
  if (keyed && key) files.serviceAccount = await write('service-account.json', serviceAccountKeyFile(state, urls, keyed.spec.email, keyed.keys.indexOf(key)));

  const user = [...state.users.values()].find((u) => !u.spec.revoked && !u.spec.reauthRequired);
  // Prefer an impersonation target the user may actually impersonate, so the written file works as is.
  const target =
    [...state.serviceAccounts.values()].find((sa) => user && state.hasRole(sa.spec.bindings, ['roles/iam.serviceAccountTokenCreator'], `user:${user.spec.email}`)) ??
    [...state.serviceAccounts.values()][0];
  if (user) {
    const authorizedUser = authorizedUserFile(state, urls, user.spec.email);
    files.authorizedUser = await write('authorized-user.json', authorizedUser);
    if (target) {
      files.impersonated = await write('impersonated.json', {
        delegates: [],
        service_account_impersonation_url: impersonationUrl(target.spec.email),
        source_credentials: { ...authorizedUser, quota_project_id: undefined },
        type: 'impersonated_service_account',
      });
    }
    const gcloudDir = join(dir, 'gcloud');
    await privateDirectory(gcloudDir, { top: false });
    await privateDirectory(join(gcloudDir, 'configurations'), { top: false });
    await write('active_config', 'default', gcloudDir);
    await write('config_default', `[core]\naccount = ${user.spec.email}\nproject = ${project.id}\n`, join(gcloudDir, 'configurations'));
    await write('application_default_credentials.json', authorizedUser, gcloudDir);
    // The login itself: the user (active) and the key's service account, with a cached access token for the user.
    // `gcloud auth login` is a second refresh token, for gcloud's own OAuth client (ADC's is another client's).
    const cli = state.addUser(user.spec, GCLOUD_CLIENT_ID);
    const { token: userToken, expiresIn } = state.issueAccessToken({ member: `user:${user.spec.email}`, email: user.spec.email, clientId: cli.clientId, scopes: ['openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/cloud-platform'] }, 'ya29.a0');
    const stored: StoredAccount[] = [
      {
        account: user.spec.email,
        credential: { client_id: cli.clientId, client_secret: cli.clientSecret, refresh_token: cli.refreshToken, revoke_uri: 'https://oauth2.googleapis.com/revoke', scopes: ['openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/appengine.admin', 'https://www.googleapis.com/auth/sqlservice.login', 'https://www.googleapis.com/auth/compute', 'https://www.googleapis.com/auth/accounts.reauth'], token_uri: urls.token, type: 'authorized_user', universe_domain: 'googleapis.com' },
        accessToken: { token: userToken, expiresAt: state.nowMs() + expiresIn * 1000 },
      },
    ];
    if (keyed && key) {
      const k = serviceAccountKeyFile(state, urls, keyed.spec.email, keyed.keys.indexOf(key));
      stored.push({ account: keyed.spec.email, credential: { client_email: k.client_email, client_id: k.client_id, private_key: k.private_key, private_key_id: k.private_key_id, project_id: k.project_id, token_uri: k.token_uri, type: 'service_account', universe_domain: 'googleapis.com' } });
    }
    await writeGcloudStore(gcloudDir, stored);
    files.gcloudConfig = gcloudDir;
  }

  const pool = state.scenario.pools[0];
  const provider = pool?.providers[0];
  const federatedTarget = [...state.serviceAccounts.values()].find((sa) => (sa.spec.bindings ?? []).some((b) => b.role === 'roles/iam.workloadIdentityUser')) ?? target;
  if (pool && provider) {
    const audience = state.providerResource(pool.id, provider.id);
    // Subject tokens may live at most 48 h; 24 h keeps the written file usable for a working day.
    files.subjectToken = await write('subject-token.jwt', state.externalSubjectToken(`https:${audience}`, undefined, 24 * 3600));
    files.externalAccount = await write('external-account.json', {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: urls.sts,
      credential_source: { file: files.subjectToken, format: { type: 'text' } },
      ...(federatedTarget
        ? { service_account_impersonation_url: impersonationUrl(federatedTarget.spec.email), service_account_impersonation: { token_lifetime_seconds: 3600 } }
        : {}),
    });
  }

  if (frontDoor) files.ca = await write('ca.pem', frontDoor.caPem);
  const env: Record<string, string> = {
    ...(files.serviceAccount ? { GOOGLE_APPLICATION_CREDENTIALS: files.serviceAccount } : {}),
    GCE_METADATA_HOST: urls.metadataHost,
    GCE_METADATA_IP: urls.metadataHost,
    GCE_METADATA_ROOT: urls.metadataHost,
    IDCALL_CERTS_URL: urls.jwks,
    IDCALL_TOKEN_URL: urls.token,
    IDCALL_IAM_URL: urls.iam,
    IDCALL_STS_URL: urls.sts,
    CLOUDSDK_AUTH_TOKEN_HOST: urls.token,
    // gcloud's impersonation (--impersonate-service-account) calls IAM Credentials at this override.
    CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS: `${urls.iam}/`,
    ...(files.gcloudConfig ? { CLOUDSDK_CONFIG: files.gcloudConfig } : {}),
    // https://hello-….run.app and the other real host names reach the emulator's TLS front door, verified by its CA.
    ...(frontDoor && files.ca ? { IDCALL_CACERT: files.ca, IDCALL_CONNECT_TO: frontDoor.connectTo.join(' ') } : {}),
  };
  // The services' URLs too, so a script (and the README) can call one without copying a port.
  const serviceUrls = Object.fromEntries(Object.entries(urls.services).map(([name, url]) => [`EMULATOR_SERVICE_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`, url]));
  const script = (vars: Record<string, string>) => Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n') + '\n';
  if (options.envFile !== false) await write('env.sh', script({ ...env, ...serviceUrls }));
  if (frontDoor?.proxyUrl && files.ca && options.envFile !== false) {
    const real = await writeCredentials(state, googleUrls(urls), join(dir, 'google'), { caPem: frontDoor.caPem, connectTo: [] }, { envFile: false });
    const proxyEnv: Record<string, string> = {
      HTTPS_PROXY: frontDoor.proxyUrl,
      https_proxy: frontDoor.proxyUrl,
      // Loopback and the metadata server stay direct, as on Google Cloud.
      NO_PROXY: `127.0.0.1,localhost,::1,${urls.metadataHost.replace(/:\d+$/, '')},169.254.169.254,metadata,metadata.google.internal`,
      no_proxy: `127.0.0.1,localhost,::1,${urls.metadataHost.replace(/:\d+$/, '')},169.254.169.254,metadata,metadata.google.internal`,
      NODE_EXTRA_CA_CERTS: files.ca,
      REQUESTS_CA_BUNDLE: files.ca,
      CURL_CA_BUNDLE: files.ca,
      SSL_CERT_FILE: files.ca,
      CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE: files.ca,
      GCE_METADATA_HOST: urls.metadataHost,
      GCE_METADATA_IP: urls.metadataHost,
      GCE_METADATA_ROOT: urls.metadataHost,
      ...(real.files.serviceAccount ? { GOOGLE_APPLICATION_CREDENTIALS: real.files.serviceAccount } : {}),
      ...(real.files.gcloudConfig ? { CLOUDSDK_CONFIG: real.files.gcloudConfig } : {}),
    };
    await write('google-env.sh', script(proxyEnv));
    return { dir, files: { ...files, google: join(dir, 'google') }, env, googleEnv: proxyEnv };
  }
  return { dir, files, env };
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
