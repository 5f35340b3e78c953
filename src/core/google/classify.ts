// Turn a failed exchange with Google into a cause code, a sentence and the exact fix.
import { IdcallError, type CauseCode } from '../errors.ts';
import type { Exchange } from '../net/transport.ts';

/** subject: the external subject token's source (credential_source: a URL, AWS, an executable), before STS. */
export type Phase = 'token' | 'refresh' | 'iam' | 'sts' | 'subject' | 'metadata';

const COMPONENT: Record<Phase, { code: CauseCode; name: string }> = {
  token: { code: 'TOKEN_ENDPOINT_ERROR', name: 'The OAuth token endpoint' },
  refresh: { code: 'TOKEN_ENDPOINT_ERROR', name: 'The OAuth token endpoint' },
  iam: { code: 'TOKEN_ENDPOINT_ERROR', name: 'IAM Service Account Credentials' },
  sts: { code: 'FEDERATION_FAILED', name: 'The Security Token Service (STS)' },
  subject: { code: 'FEDERATION_FAILED', name: 'The subject-token source (credential_source)' },
  metadata: { code: 'METADATA_ERROR', name: 'The metadata server' },
};

const NETWORK_FIX = 'Check network access to Google (HTTPS_PROXY, firewall, Private Service Connect); --token-url, --iam-url and --sts-url point idcall at other endpoints.';

/** Who asked IAM Credentials for what: the caller, the delegation chain (emails, in order) and the target. */
export interface IamParty {
  sa: string;
  caller: string | null;
  permission: string;
  delegates?: string[];
}

/**
 * The grants a denied delegation chain needs, from the permission IAM names: implicitDelegation fails on a hop inside
 * the chain (IAM does not say which, so each hop's grant is listed); the method's permission fails on the last hop,
 * the last delegate's right on the target, not the caller's.
 */
function delegationFix(who: IamParty, deniedPermission: string | undefined, callerMember: string): { message: string; fix: string } {
  const chain = [callerMember, ...who.delegates!.map((d) => `serviceAccount:${d}`)];
  const grant = (sa: string, member: string) => `gcloud iam service-accounts add-iam-policy-binding ${sa} --member=${member} --role=roles/iam.serviceAccountTokenCreator`;
  if (deniedPermission?.endsWith('implicitDelegation')) {
    const hops = who.delegates!.map((d, i) => grant(d, chain[i]!));
    return { message: `a hop of the delegation chain ${chain.map((m) => m.replace(/^\w+:/, '')).join(' → ')} → ${who.sa} is missing: each account needs roles/iam.serviceAccountTokenCreator on the next`, fix: `Grant each hop that lacks it (IAM does not say which one failed): ${hops.join('; ')}` };
  }
  const last = chain.at(-1)!;
  return { message: `the last delegate, ${last.replace(/^\w+:/, '')}, may not mint tokens for ${who.sa}`, fix: `Grant the last hop: ${grant(who.sa, last)}` };
}

export function classifyFailure(err: unknown, phase: Phase, exchange: Exchange | undefined, who?: IamParty): IdcallError {
  if (err instanceof IdcallError) return err;
  const { code: fallback } = COMPONENT[phase];
  const name = COMPONENT[phase].name;
  const wrap = (code: CauseCode, message: string, fix: string) => new IdcallError(code, message, fix, { cause: err });
  const where = exchange ? ` (${exchange.method} ${exchange.url}${exchange.proxy ? ` through the proxy ${exchange.proxy}` : ''})` : '';

  // No HTTP exchange at all: the library failed before sending (a subject-token file, an executable).
  if (!exchange) {
    const text = err instanceof Error ? err.message : String(err);
    if (phase === 'subject' || phase === 'sts') return wrap('FEDERATION_FAILED', `Could not obtain the external subject token: ${text}`, 'Check the credential_source in the federation configuration: the file, URL or executable must yield a token.');
    return wrap(fallback, `${name} could not be asked: ${text}`, NETWORK_FIX);
  }
  // The identity provider's endpoint is not Google: neither Google's status page nor STS's settings are the fix.
  if (phase === 'subject') {
    const answer = exchange.error ? `did not answer${where}: ${exchange.error}` : `answered HTTP ${exchange.status ?? 0}${where}, not a subject token`;
    return wrap('FEDERATION_FAILED', `${name} ${answer}.`, 'Check credential_source.url (and its headers) in the configuration: the endpoint must be reachable from here and hand out the subject token; a missing or expired credential for that endpoint is the usual cause of a 401 or 403.');
  }
  if (exchange.error) {
    const code = phase === 'metadata' ? 'METADATA_ERROR' : phase === 'sts' ? 'FEDERATION_FAILED' : 'TOKEN_ENDPOINT_ERROR';
    const fix = phase === 'metadata' ? 'Off Google Cloud, unset GCE_METADATA_HOST/GCE_METADATA_IP or use a credential file; on Google Cloud, check the instance is healthy.' : NETWORK_FIX;
    return wrap(code, `${name} did not answer${where}: ${exchange.error}.`, fix);
  }
  const status = exchange.status ?? 0;
  const g = exchange.googleError;
  const google = g ? `${g.code}${g.message ? `: ${g.message}` : ''}` : `HTTP ${status}`;

  if (status >= 200 && status < 300) {
    return wrap(fallback, `${name} answered ${status} with a body that is not a token${where}: a proxy, captive portal or firewall may be answering instead of Google.`, 'Check HTTPS_PROXY and NO_PROXY, and that the endpoint URLs point at Google.');
  }
  if (status >= 500 || status === 429 || status === 408) {
    return wrap(fallback, `${name} failed with ${google}${where}; it was retried within the time limit.`, 'This is on Google\'s side or a proxy\'s: retry shortly; if it persists, check https://status.cloud.google.com.');
  }

  switch (phase) {
    case 'token': {
      if (g?.code === 'invalid_grant' && /short-lived|timeframe|iat|exp/i.test(g.message)) {
        return wrap('CLOCK_SKEW', `The token endpoint rejected the signed assertion's times (${google}): this machine's clock is probably wrong.`, 'Synchronise the clock (e.g. `sudo timedatectl set-ntp true` or `sudo chronyc makestep`) and try again.');
      }
      if (g?.code === 'invalid_grant' && /account not found/i.test(g.message)) {
        return wrap('KEY_REJECTED', `The service account of this key no longer exists or is disabled (${google}).`, 'Enable or recreate the service account (gcloud iam service-accounts enable SA_EMAIL), or use another key.');
      }
      if (g?.code === 'invalid_grant' || g?.code === 'disabled_client' || g?.code === 'invalid_client' || g?.code === 'unauthorized_client') {
        return wrap('KEY_REJECTED', `Google rejected this service-account key (${google}): the key was deleted, disabled or belongs to another account.`, 'Create a new key: gcloud iam service-accounts keys create key.json --iam-account=SA_EMAIL (or better, avoid keys: use impersonation).');
      }
      break;
    }
    case 'refresh': {
      if (g?.subtype === 'invalid_rapt' || g?.subtype === 'rapt_required') {
        return wrap('REAUTH_REQUIRED', `Your organisation requires you to sign in again (${google}).`, 'Run: gcloud auth application-default login');
      }
      if (g?.code === 'invalid_grant' || g?.code === 'invalid_client' || g?.code === 'deleted_client' || g?.code === 'unauthorized_client') {
        return wrap('REFRESH_TOKEN_REJECTED', `Google rejected the refresh token (${google}): it was revoked, expired or belongs to another OAuth client.`, 'Run: gcloud auth application-default login');
      }
      break;
    }
    case 'iam': {
      // The source's access token lacks cloud-platform (a VM with default access scopes): no grant fixes that (§15.1).
      if (status === 403 && g?.subtype === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT') {
        return wrap(
          'SCOPE_INSUFFICIENT',
          `IAM Credentials refused ${who?.caller ?? 'the source credential'}'s access token: it lacks the cloud-platform (or iam) scope (${google}).`,
          `The token needs https://www.googleapis.com/auth/cloud-platform. On a Compute Engine VM, access scopes are set on the instance: stop it, then gcloud compute instances set-service-account INSTANCE --zone=ZONE --service-account=${who?.caller ?? 'SA_EMAIL'} --scopes=cloud-platform, and start it again (on GKE, the node pool's --scopes). Elsewhere, mint the source token with that scope.`,
        );
      }
      if (status === 403 || status === 404) {
        const member = who?.caller ? memberOf(who.caller) : 'PRINCIPAL';
        if (who?.delegates?.length) {
          const denied = /Permission '([^']+)'/.exec(g?.message ?? '')?.[1];
          const chain = delegationFix(who, denied, member);
          return wrap('IMPERSONATION_DENIED', `${who.caller ?? 'The caller'} may not mint tokens for ${who.sa} through --delegates: ${chain.message} (${google}).`, chain.fix);
        }
        const role = who?.caller && isFederated(who.caller) ? 'roles/iam.workloadIdentityUser' : 'roles/iam.serviceAccountTokenCreator';
        return wrap(
          'IMPERSONATION_DENIED',
          `${who?.caller ?? 'The caller'} may not mint tokens for ${who?.sa ?? 'the service account'} (${google}).`,
          `Grant the token-creator role: gcloud iam service-accounts add-iam-policy-binding ${who?.sa ?? 'SA_EMAIL'} --member=${member} --role=${role}`,
        );
      }
      if (status === 401) {
        return wrap('TOKEN_ENDPOINT_ERROR', `IAM Credentials did not accept the source credential's access token (${google}).`, 'The source credential produced an unusable access token; run `idcall doctor` to check it.');
      }
      break;
    }
    case 'sts':
      return wrap('FEDERATION_FAILED', `The Security Token Service rejected the token exchange (${google}).`, stsFix(g?.code, g?.message ?? ''));
    case 'metadata': {
      // GKE's metadata server passing on IAM's refusal: the Google service account lacks the KSA's binding (§14.1).
      const body = String((err as { body?: unknown }).body ?? '');
      if (status === 403 && /Unable to generate (access|ID) token; IAM returned 403/.test(body)) {
        return wrap(
          'IMPERSONATION_DENIED',
          `GKE's metadata server could not mint for the pod's Google service account: IAM refused it (${body.split('\n')[0]}).`,
          'Let the Kubernetes service account act as the Google one: gcloud iam service-accounts add-iam-policy-binding GSA_EMAIL --role=roles/iam.workloadIdentityUser --member="serviceAccount:PROJECT_ID.svc.id.goog[NAMESPACE/KSA_NAME]", and annotate the KSA with iam.gke.io/gcp-service-account=GSA_EMAIL.',
        );
      }
      if (status === 404 && /not enabled/i.test(g?.message ?? '')) {
        return wrap('METADATA_ERROR', 'This instance has no service account attached, so the metadata server cannot mint tokens.', 'Attach a service account to the instance or Cloud Run service (--service-account), or use a credential file.');
      }
      return wrap('METADATA_ERROR', `The metadata server answered ${status}${where}.`, 'Check that GCE_METADATA_HOST points at a metadata server, or unset it.');
    }
  }
  return wrap(fallback, `${name} answered ${google}${where}.`, NETWORK_FIX);
}

function stsFix(code: string | undefined, message: string): string {
  if (code === 'invalid_target' || /audience/i.test(message) && code === 'invalid_request') {
    return 'Check "audience" in the configuration: it must be //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER, and the pool and provider must exist and be enabled.';
  }
  if (/audience/i.test(message)) return 'The subject token\'s aud must be one of the provider\'s allowed audiences (by default https://iam.googleapis.com/ + the provider resource name).';
  return 'Check the subject token (issuer, expiry, attribute condition) against the provider: gcloud iam workload-identity-pools providers describe PROVIDER --workload-identity-pool=POOL --location=global';
}

/** A federated identity is named by its IAM member URI (load.ts federatedPrincipal), never by an email. */
const isFederated = (principal: string): boolean => principal.startsWith('principal://') || principal.startsWith('principalSet://');

/** IAM member form of a principal: serviceAccount:, user: or principal:// as it stands. */
export function memberOf(principal: string): string {
  if (isFederated(principal)) return principal;
  return principal.endsWith('.gserviceaccount.com') ? `serviceAccount:${principal}` : `user:${principal}`;
}

