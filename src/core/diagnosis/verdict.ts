// From what the steps saw to one cause code, a sentence, and the exact fix with real names filled in.
import { memberOf } from '../google/classify.ts';
import type { Verdict } from '../report.ts';
import type { VerifyResult } from '../google/verify.ts';

export interface ServiceRef {
  kind: 'run' | 'function';
  name: string;
  region: string | null;
}

/** Recognise Cloud Run and Cloud Functions URLs so fixes can name the real service and region. */
export function serviceFromUrl(raw: string): ServiceRef | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const host = url.hostname;
  const deterministic = /^(?:[a-z0-9-]+---)?([a-z][a-z0-9-]*?)-(\d{6,})\.([a-z]+-[a-z]+\d+)\.run\.app$/.exec(host);
  if (deterministic) return { kind: 'run', name: deterministic[1]!, region: deterministic[3]! };
  const hashed = /^(?:[a-z0-9-]+---)?([a-z][a-z0-9-]*)-[a-z0-9]+-([a-z]{2})\.a\.run\.app$/.exec(host);
  if (hashed) return { kind: 'run', name: hashed[1]!, region: REGION_CODES[hashed[2]!] ?? null };
  const fn = /^([a-z]+-[a-z]+\d+)-[a-z0-9-]+\.cloudfunctions\.net$/.exec(host);
  const fnName = url.pathname.split('/')[1];
  if (fn && fnName) return { kind: 'function', name: fnName, region: fn[1]! };
  return null;
}

// Region codes of hash-style run.app URLs (the two letters before .a.run.app) that are unambiguous.
const REGION_CODES: Record<string, string> = { uc: 'us-central1', ue: 'us-east1', uw: 'us-west1', ew: 'europe-west1', an: 'asia-northeast1', as: 'asia-south1' };

export function invokerFix(principal: string | null, service: ServiceRef | null): string {
  const member = principal ? memberOf(principal) : 'serviceAccount:SA_EMAIL';
  const region = service?.region ? ` --region=${service.region}` : ' --region=REGION';
  if (service?.kind === 'function') return `gcloud functions add-invoker-policy-binding ${service.name}${region} --member=${member}`;
  return `gcloud run services add-iam-policy-binding ${service?.name ?? 'SERVICE'}${region} --member=${member} --role=roles/run.invoker`;
}

export function userTokenFix(user: string | null, audience: string): string {
  const member = user ? `user:${user}` : 'user:YOU@example.com';
  return (
    `Impersonate a service account that may invoke the target: idcall call URL --impersonate-service-account SA_EMAIL ` +
    `(grant yourself the right once: gcloud iam service-accounts add-iam-policy-binding SA_EMAIL --member=${member} --role=roles/iam.serviceAccountTokenCreator). ` +
    `A user's own ID token always has the OAuth client id as its audience, never ${audience}.`
  );
}

export interface HttpOutcome {
  status: number;
  redirect?: string;
  host: string;
}

/** Verdict for a response from the target, explained by what the verify step saw. */
/** What is known of the audience: the called URL's origin (the default), whether the user chose it, the called service. */
export interface AudienceChoice {
  origin: string;
  fromFlag: boolean;
  calledService: ServiceRef | null;
}

/**
 * The fix for a 401 over the audience: mint for what the called service accepts; and only when the user chose the
 * audience, offer to add that audience to the called service (never to the service the audience happens to name).
 */
function audienceFix(audience: string, choice: AudienceChoice): string {
  const called = choice.calledService;
  const region = called?.region ? ` --region=${called.region}` : ' --region=REGION';
  const add = `gcloud run services update ${called?.name ?? 'SERVICE'}${region} --add-custom-audiences=${audience}`;
  if (choice.fromFlag && audience !== choice.origin) {
    return `Mint for the audience the called service accepts: drop --audience (the default, ${choice.origin}, is its URL's origin)${called ? '' : ', or pass its run.app URL'}; or, if ${audience} is meant to reach this service (a custom domain), add it to this service: ${add}`;
  }
  return `The service is reached through a custom domain or load balancer: mint for the audience it accepts, --audience https://SERVICE-….run.app (its run.app URL), or add ${audience} to it: ${add}`;
}

export function verdictForResponse(http: HttpOutcome, verify: VerifyResult | null, principal: string | null, service: ServiceRef | null, audience: string, choice: AudienceChoice = { origin: audience, fromFlag: false, calledService: service }): Verdict {
  const { status, host } = http;
  if (status >= 200 && status < 300) {
    const user = verify?.findings.find((f) => f.code === 'USER_TOKEN_AUDIENCE');
    return {
      code: 'OK',
      summary: `${host} answered ${status}${principal ? ` to ${principal}` : ''}.`,
      fix: user ? `It worked with a user's own token, which only development setups accept; for automation: ${userTokenFix(principal, audience)}` : '',
    };
  }
  if (status === 401) {
    const findings = verify?.findings ?? [];
    const pick = (code: string, level?: string) => findings.find((f) => f.code === code && (level === undefined || f.status === level));
    const expired = pick('TOKEN_EXPIRED', 'fail');
    if (expired) return { code: 'TOKEN_EXPIRED', summary: `${host} answered 401: the token ${expired.text}.`, fix: 'Mint a fresh token (idcall does on every run; a cached or pasted token must be renewed), and check this machine\'s clock.' };
    const skew = pick('CLOCK_SKEW');
    const user = pick('USER_TOKEN_AUDIENCE');
    if (user) return { code: 'USER_TOKEN_AUDIENCE', summary: `${host} answered 401: ${user.text}.`, fix: userTokenFix(principal, audience) };
    const forged = pick('SIGNATURE_INVALID', 'fail');
    if (forged) return { code: 'SIGNATURE_INVALID', summary: `${host} answered 401: the token's ${forged.text}.`, fix: 'Mint a fresh token from Google (idcall does on every run); a token that was altered, or signed by something else, is never accepted.' };
    const mismatch = pick('AUDIENCE_MISMATCH', 'fail');
    if (mismatch) {
      return { code: 'AUDIENCE_MISMATCH', summary: `${host} answered 401: ${mismatch.text}.`, fix: audienceFix(audience, choice) };
    }
    if (skew) return { code: 'CLOCK_SKEW', summary: `${host} answered 401 and ${skew.text}.`, fix: 'Synchronise the clock (sudo timedatectl set-ntp true) and try again.' };
    return {
      code: 'AUDIENCE_MISMATCH',
      summary: `${host} answered 401: it could not verify the token for ${audience}, though it looks valid here.`,
      fix: audienceFix(audience, choice),
    };
  }
  if (status === 403) {
    return {
      code: 'INVOKER_DENIED',
      summary: `${host} answered 403: ${principal ?? 'the caller'} is not allowed to invoke it (no roles/run.invoker).`,
      fix: invokerFix(principal, service),
    };
  }
  if (status === 404) {
    return { code: 'NOT_FOUND', summary: `${host} answered 404.`, fix: 'Check the path and the service name; a service with internal-only ingress also answers 404 from outside its network.' };
  }
  if (status >= 300 && status < 400) {
    return { code: 'TARGET_ERROR', summary: `${host} answered ${status}, redirecting to ${http.redirect ?? '(no Location)'}; idcall does not follow redirects, so the token is never sent to another origin.`, fix: 'Call the final URL directly.' };
  }
  return { code: 'TARGET_ERROR', summary: `${host} answered ${status}: the token was accepted but the service failed.`, fix: 'Look at the service\'s logs: gcloud logging read \'resource.type="cloud_run_revision"\' --limit=20' };
}
