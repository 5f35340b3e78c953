// IAM Service Account Credentials: generateIdToken and generateAccessToken for a service account, authorised by a
// bearer token, through an optional delegation chain. Failures name the hop and the grant (classify.ts).
import { IdcallError } from '../../errors.ts';
import type { IamParty } from '../classify.ts';
import { CLOUD_PLATFORM_SCOPE, GOOGLE_IAM_URL } from '../../endpoints.ts';
import { guard, parseJsonObject, type Session } from './session.ts';

/** The IAM base URL an impersonation file names (a PSC endpoint, the emulator), when it names one. */
export function iamBase(impersonationUrl: unknown): string | undefined {
  if (typeof impersonationUrl !== 'string') return undefined;
  const match = /^(https?:\/\/[^/]+)\/v1\//.exec(impersonationUrl);
  return match?.[1];
}

function iamUrl(s: Session, sa: string, method: string, fileBase?: string): string {
  const base = (s.options.endpoints.iam ?? fileBase ?? GOOGLE_IAM_URL).replace(/\/$/, '');
  return `${base}/v1/projects/-/serviceAccounts/${encodeURIComponent(sa)}:${method}`;
}

const delegateEmails = (delegates: string[]) => delegates.map((d) => d.replace(/^projects\/[^/]+\/serviceAccounts\//, ''));
const delegateNames = (delegates: string[]) => delegates.map((d) => (d.startsWith('projects/') ? d : `projects/-/serviceAccounts/${d}`));

export async function generateIdToken(s: Session, bearer: string, sa: string, delegates: string[], caller: string | null, fileBase?: string): Promise<string> {
  const body = { audience: s.options.audience, includeEmail: s.options.includeEmail, delegates: delegateNames(delegates) };
  const data = await iamCall(s, iamUrl(s, sa, 'generateIdToken', fileBase), bearer, body, { sa, caller, permission: 'getOpenIdToken', delegates: delegateEmails(delegates) });
  if (typeof data.token !== 'string') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'generateIdToken answered 200 without a token.', 'Check --iam-url points at IAM Credentials.');
  return data.token;
}

export async function generateAccessToken(s: Session, bearer: string, sa: string, delegates: string[], caller: string | null, fileBase?: string): Promise<string> {
  const body = { scope: [CLOUD_PLATFORM_SCOPE], lifetime: '3600s', delegates: delegateNames(delegates) };
  const data = await iamCall(s, iamUrl(s, sa, 'generateAccessToken', fileBase), bearer, body, { sa, caller, permission: 'getAccessToken', delegates: delegateEmails(delegates) });
  if (typeof data.accessToken !== 'string') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'generateAccessToken answered 200 without an accessToken.', 'Check --iam-url points at IAM Credentials.');
  return data.accessToken;
}

async function iamCall(s: Session, url: string, bearer: string, body: object, who: IamParty): Promise<Record<string, any>> {
  return guard(
    s,
    'iam',
    async () => {
      const res = await s.http(url, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = res.text();
      if (!res.ok) throw Object.assign(new Error(`IAM Credentials answered ${res.status}`), { status: res.status });
      return parseJsonObject(text, 'IAM Credentials');
    },
    who,
  );
}
