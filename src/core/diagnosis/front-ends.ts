// Verdicts for the front ends that answer in their own words: Cloud Functions (§12), Identity-Aware Proxy (§11.3)
// and API Gateway / ESPv2 (§13.2). Each returns null when the answer is not one it recognises, and the generic Cloud
// Run verdict (verdict.ts) decides.
import { memberOf } from '../google/classify.ts';
import type { CredentialType, Verdict } from '../report.ts';
import { answeredByGoogle, espv2Message, type TargetInfo } from '../target-kind.ts';
import { invokerFix, type ServiceRef } from './verdict.ts';

export interface FrontEndAnswer {
  status: number;
  url: URL;
  headers: Record<string, string>;
  /** The start of the body (a few KB at most), as text. */
  body: string;
  target: TargetInfo;
  principal: string | null;
  sourceType: CredentialType | null;
  /** The header the token went in. */
  tokenHeader: string;
  service: ServiceRef | null;
  /** IAP's OAuth client ID, when a request without a token made IAP name it (its 302's client_id). */
  iapClientId?: string;
}

export function frontEndVerdict(a: FrontEndAnswer): Verdict | null {
  switch (a.target.kind) {
    case 'cloud_functions':
      return functionsVerdict(a);
    case 'iap':
      return iapVerdict(a);
    case 'api_gateway':
      return gatewayVerdict(a);
    default:
      return null;
  }
}

/**
 * A 401 or 403 from a target whose kind nothing told (`other`) and whose answer has none of Google's marks, for a
 * token that checked out here: the application (or a proxy of its own) refused, and naming IAM or the audience as the
 * cause would be a guess. The code and exit status stay what they were; the summary and fix say what is known.
 */
export function unmarkedRefusal(a: FrontEndAnswer, verdict: Verdict, tokenLooksValid: boolean): Verdict {
  if (a.target.kind !== 'other' || (a.status !== 401 && a.status !== 403) || !tokenLooksValid) return verdict;
  if ((verdict.code !== 'INVOKER_DENIED' && verdict.code !== 'AUDIENCE_MISMATCH') || answeredByGoogle(a.headers, a.body)) return verdict;
  return {
    code: verdict.code,
    summary: `${host(a)} answered ${a.status}, but not as Google's front end answers (no Google Frontend server or trace header, not Cloud Run's error page): the application, or something in front of it that is not Google, refused the request; the token checked out here.`,
    fix: `Look at the application's own access rules and logs. If it reads Authorization for its own login, send the token in X-Serverless-Authorization instead (--header-name X-Serverless-Authorization). If it is a Cloud Run service behind a proxy of your own, that proxy may be refusing; if Google is, after all: ${verdict.fix}`,
  };
}

const host = (a: FrontEndAnswer) => a.url.host;
const member = (a: FrontEndAnswer) => (a.principal ? memberOf(a.principal) : 'serviceAccount:SA_EMAIL');

/** The function a Cloud Functions URL names: its first path segment. */
export function functionOf(url: URL, region: string | null = null): ServiceRef | null {
  const name = url.pathname.split('/').find(Boolean);
  return name ? { kind: 'function', name, region } : null;
}

function functionsVerdict(a: FrontEndAnswer): Verdict | null {
  const fn = a.service?.kind === 'function' ? a.service : functionOf(a.url);
  if (a.status === 401 && fn) {
    const functionUrl = `${a.url.origin}/${fn.name}`;
    if (a.target.audience === functionUrl) return null;
    return {
      code: 'AUDIENCE_MISMATCH',
      summary: `${host(a)} answered 401: the token's audience is ${a.target.audience}, but Cloud Functions (1st gen) accepts only the full function URL, ${functionUrl}.`,
      fix: a.target.audienceSource === 'flag' ? `Use the function URL as audience: --audience ${functionUrl} (or drop --audience: for a cloudfunctions.net URL idcall uses it by default).` : `Use the function URL as audience: --audience ${functionUrl}`,
    };
  }
  if (a.status === 403 && fn) {
    return {
      code: 'INVOKER_DENIED',
      summary: `${host(a)} answered 403: ${a.principal ?? 'the caller'} may not invoke the function ${fn.name}.`,
      // add-invoker-policy-binding grants the right role for either generation (§12.2); add-iam-policy-binding does not.
      fix: invokerFix(a.principal, fn),
    };
  }
  return null;
}

/** The grant command for IAP's front end: App Engine, a load balancer's backend service, or Cloud Run directly. */
function iapGrant(a: FrontEndAnswer): string {
  const m = member(a);
  const role = '--role=roles/iap.httpsResourceAccessor';
  const hostname = a.url.hostname;
  if (hostname.endsWith('.appspot.com')) return `gcloud iap web add-iam-policy-binding --resource-type=app-engine --member=${m} ${role}`;
  if (hostname.endsWith('.run.app')) {
    const region = a.service?.region ? ` --region=${a.service.region}` : ' --region=REGION';
    return `gcloud beta iap web add-iam-policy-binding --resource-type=cloud-run --service=${a.service?.name ?? 'SERVICE'}${region} --member=${m} ${role}`;
  }
  return `gcloud iap web add-iam-policy-binding --resource-type=backend-services --service=BACKEND_SERVICE_NAME --member=${m} ${role} (if ${hostname} is App Engine: --resource-type=app-engine)`;
}

const FIND_CLIENT_ID =
  'IAP expects the OAuth client ID of the IAP resource as audience, not the URL. Find it: `gcloud compute backend-services describe BACKEND_SERVICE_NAME --global --format="value(iap.oauth2ClientId)"` for a load balancer, or the console (Security → Identity-Aware Proxy → the resource → OAuth client)';

function iapVerdict(a: FrontEndAnswer): Verdict | null {
  if (a.headers['x-goog-iap-generated-response'] !== 'true') return null;
  const text = a.body.trim();
  if (a.status === 302 || /empty token/.test(text)) {
    return {
      code: 'TOKEN_NOT_SEEN',
      summary: `IAP at ${host(a)} saw no token ("${text || 'Invalid IAP credentials: empty token'}"): it reads Proxy-Authorization and Authorization only, and the token went in ${a.tokenHeader}.`,
      fix: a.tokenHeader.toLowerCase() === 'authorization' ? 'Send the token in Authorization (the default) or Proxy-Authorization, and make sure no proxy in between drops it.' : 'Send it where IAP reads it: --header-name Authorization, or --header-name Proxy-Authorization when the app needs its own Authorization.',
    };
  }
  if (a.status === 401 && /audience/i.test(text)) {
    const offered = a.iapClientId
      ? ` IAP's own sign-in names the client ${a.iapClientId} (learnt from its redirect for a request without a token): try --audience ${a.iapClientId}. If that is a Google-managed client (created by IAP, not by you), programmatic access is blocked until it is allowlisted: add it to programmatic_clients with \`gcloud iap settings set SETTINGS.yaml --resource-type=iap_web --project=PROJECT_ID\`.`
      : '';
    const user = a.sourceType === 'authorized_user' ? ` A user credential cannot mint for IAP's client: its ID token is for gcloud's own OAuth client. Use impersonation (--impersonate-service-account SA_EMAIL) or an allowlisted desktop OAuth client.` : '';
    return {
      code: 'AUDIENCE_MISMATCH',
      summary: `IAP at ${host(a)} answered 401 "${text}": the token's audience is ${a.target.audience}, which is not this resource's OAuth client ID.`,
      fix: `${FIND_CLIENT_ID}; then --audience CLIENT_ID.apps.googleusercontent.com.${offered}${user}`,
    };
  }
  if (a.status === 401 && /'email' claim/.test(text)) {
    return { code: 'EMAIL_CLAIM_MISSING', summary: `IAP at ${host(a)} answered 401 "${text}": the token has no email claim, which IAP requires.`, fix: emailFix(a.sourceType) };
  }
  if (a.status === 401 && /expired/i.test(text)) return { code: 'TOKEN_EXPIRED', summary: `IAP at ${host(a)} answered 401 "${text}".`, fix: 'Mint a fresh token (idcall does on every run); ID tokens live one hour.' };
  if (a.status === 401 && /signature/i.test(text)) return { code: 'SIGNATURE_INVALID', summary: `IAP at ${host(a)} answered 401 "${text}".`, fix: 'Send a Google-signed ID token (idcall token --audience CLIENT_ID); a token altered or signed by something else is never accepted.' };
  if (a.status === 401 && /parse JWT/i.test(text)) return { code: 'AUDIENCE_MISMATCH', summary: `IAP at ${host(a)} answered 401 "${text}": what arrived is not a JWT (an OAuth access token?).`, fix: 'Send a Google-signed ID token for the OAuth client ID: idcall call URL --audience CLIENT_ID.apps.googleusercontent.com' };
  if (a.status === 403) {
    return { code: 'INVOKER_DENIED', summary: `IAP at ${host(a)} answered 403: ${a.principal ?? 'the caller'} is not allowed through (no roles/iap.httpsResourceAccessor).`, fix: iapGrant(a) };
  }
  return null;
}

/** How to get the email claim, for the credential in use. */
function emailFix(sourceType: CredentialType | null): string {
  switch (sourceType) {
    case 'compute':
      return 'The metadata server adds email only with format=full (idcall asks for it): a proxy or platform in between asked for format=standard (ESPv2 backend auth does); mint with format=full, or through impersonation with includeEmail.';
    case 'impersonated_service_account':
    case 'external_account':
      return 'Mint with includeEmail: idcall does for IAP targets; with gcloud, add --include-email; in code, generateIdToken {"includeEmail": true}.';
    default:
      return 'Mint the token with the email claim: idcall does for IAP targets (--target-kind iap); with gcloud, add --include-email.';
  }
}

function gatewayVerdict(a: FrontEndAnswer): Verdict | null {
  const message = espv2Message(a.body);
  if (message === null) return null;
  const said = `${host(a)} (API Gateway / ESPv2) answered ${a.status} "${message}"`;
  if (message === 'Jwt is missing') {
    return { code: 'TOKEN_NOT_SEEN', summary: `${said}: no token reached it; ESPv2 reads Authorization: Bearer, X-Goog-Iap-Jwt-Assertion or ?access_token=, and the token went in ${a.tokenHeader}.`, fix: 'Send it in Authorization: --header-name Authorization (the default).' };
  }
  if (message === 'Jwt issuer is not configured') {
    return {
      code: 'ISSUER_NOT_ACCEPTED',
      summary: `${said}: the API config does not accept tokens from this issuer (Google's, https://accounts.google.com).`,
      fix: 'Add Google as an issuer in the API config\'s security definition (x-google-issuer: "https://accounts.google.com", x-google-jwks_uri: "https://www.googleapis.com/oauth2/v3/certs") and deploy a new config. If ESPv2 runs on Cloud Run, deploy it with --allow-unauthenticated: otherwise Cloud Run consumes the Google token and ESPv2 sees its own.',
    };
  }
  if (message === 'Audiences in Jwt are not allowed') {
    return {
      code: 'AUDIENCE_MISMATCH',
      summary: `${said}: the token's audience, ${a.target.audience}, is not one the API accepts.`,
      fix: `Mint for an audience the API lists in x-google-audiences, or, when it lists none, for https://SERVICE_NAME (the API's managed service name, e.g. https://my-api.endpoints.PROJECT_ID.cloud.goog): --audience https://SERVICE_NAME; or add ${a.target.audience} to x-google-audiences.`,
    };
  }
  if (message === 'Jwt is expired') return { code: 'TOKEN_EXPIRED', summary: `${said}.`, fix: 'Mint a fresh token (idcall does on every run), and check this machine\'s clock.' };
  if (message === 'Jwt verification fails') return { code: 'SIGNATURE_INVALID', summary: `${said}: the signature does not verify against the issuer's keys.`, fix: 'Send a token signed by the issuer the API config names (a Google ID token for x-google-issuer https://accounts.google.com).' };
  if (/^Jwks /.test(message)) return { code: 'TARGET_ERROR', summary: `${said}: the gateway could not fetch or use the issuer's keys.`, fix: 'Check x-google-jwks_uri in the API config (https://www.googleapis.com/oauth2/v3/certs for Google), and that the gateway can reach it.' };
  if (a.status === 401 || a.status === 403) return { code: a.status === 403 ? 'INVOKER_DENIED' : 'AUDIENCE_MISMATCH', summary: `${said}.`, fix: 'See the API config\'s security definitions (x-google-issuer, x-google-audiences) and the gateway\'s logs.' };
  return null;
}

