// Obtain the right kind of token for each credential type. google-auth-library speaks the protocols; mint/ decides
// which protocol, routes endpoints, and turns failures into cause codes. Each credential type is one module in
// mint/credentials/ and one entry in CREDENTIAL_MINTERS; STS, IAM Credentials and the metadata server are their own.
import type { Context } from '../context.ts';
import { IdcallError } from '../errors.ts';
import type { LoadedCredential } from './load.ts';
import type { MetadataTarget } from './discover.ts';
import { classifyFailure } from './classify.ts';
import type { CredentialType } from '../report.ts';
import type { Exchange } from '../net/transport.ts';
import { decodeJwtClaims } from './jwt.ts';
import { session, type AccessToken, type Minted, type MintOptions, type Session } from './mint/session.ts';
import { generateIdToken } from './mint/iam-credentials.ts';
import { metadataAccessToken, metadataIdentity } from './mint/metadata.ts';
import type { CredentialMinter } from './mint/credentials/types.ts';
import { serviceAccount } from './mint/credentials/service-account.ts';
import { authorizedUser } from './mint/credentials/authorized-user.ts';
import { impersonatedServiceAccount } from './mint/credentials/impersonated.ts';
import { externalAccount } from './mint/credentials/external-account.ts';
import { externalAccountAuthorizedUser, gdchServiceAccount } from './mint/credentials/unsupported.ts';

export type { MintOptions } from './mint/session.ts';

/** One entry per credential type: adding a type is one module in mint/credentials/ and one line here. */
const CREDENTIAL_MINTERS: Partial<Record<CredentialType, CredentialMinter>> = {
  service_account: serviceAccount,
  authorized_user: authorizedUser,
  impersonated_service_account: impersonatedServiceAccount,
  external_account: externalAccount,
  external_account_authorized_user: externalAccountAuthorizedUser,
  gdch_service_account: gdchServiceAccount,
};

function minterFor(credential: LoadedCredential): CredentialMinter {
  const minter = CREDENTIAL_MINTERS[credential.type];
  if (!minter) throw new IdcallError('UNSUPPORTED_CREDENTIAL_TYPE', `Credential type ${credential.type} cannot mint an ID token.`, 'Use a service-account key or impersonation.');
  return minter;
}

export interface MintResult extends Minted {
  exchanges: Exchange[];
}

export interface MintSource {
  credential: LoadedCredential | null;
  /** Set when the winning source is the metadata server. */
  metadata?: MetadataTarget;
}

export interface AccessTokenResult extends AccessToken {
  exchanges: Exchange[];
}

/** A session whose nested access tokens (an impersonation's source) run in it: one deadline, one record. */
function open(ctx: Context, options: MintOptions, exchanges: Exchange[], credential: LoadedCredential | null): Session {
  const s: Session = session(ctx, options, exchanges, credential, (nested) => sourceAccessToken(s, { credential: nested }));
  return s;
}

/** Run a mint, attaching every exchange (the failed one included) to its result or its error, for the report. */
async function recorded<T>(work: (exchanges: Exchange[]) => Promise<T>): Promise<T & { exchanges: Exchange[] }> {
  const exchanges: Exchange[] = [];
  try {
    return { ...(await work(exchanges)), exchanges };
  } catch (err) {
    throw Object.assign(err instanceof IdcallError ? err : classifyFailure(err, 'token', exchanges.at(-1)), { exchanges });
  }
}

export function mintIdToken(ctx: Context, source: MintSource, options: MintOptions): Promise<MintResult> {
  return recorded((exchanges) => idToken(open(ctx, options, exchanges, source.credential), source));
}

/** An OAuth access token for the source (what `doctor` uses to show the credential works at all). */
export function mintAccessToken(ctx: Context, source: MintSource, options: Omit<MintOptions, 'audience'>): Promise<AccessTokenResult> {
  return recorded((exchanges) => sourceAccessToken(open(ctx, { ...options, audience: '' }, exchanges, source.credential), source));
}

async function idToken(s: Session, source: MintSource): Promise<Minted> {
  const { impersonate } = s.options;
  if (impersonate) {
    const caller = await sourceAccessToken(s, source);
    const token = await generateIdToken(s, caller.token, impersonate, s.options.delegates, caller.principal);
    return { token, method: `generateIdToken for ${impersonate}, authorised by ${caller.principal ?? 'the source credential'}`, principal: impersonate, caller: caller.principal, userToken: false };
  }
  if (!source.credential) {
    const { token, warnings } = await metadataIdentity(s, source.metadata!);
    const principal = (decodeJwtClaims(token)?.email as string | undefined) ?? null;
    return { token, method: `metadata server identity (format=${s.options.format})`, principal, caller: null, userToken: false, ...(warnings.length ? { warnings } : {}) };
  }
  return minterFor(source.credential).idToken(s, source.credential);
}

/** An OAuth access token for the source credential: the bearer for IAM Credentials calls. */
function sourceAccessToken(s: Session, source: MintSource): Promise<AccessToken> {
  if (!source.credential) return metadataAccessToken(s, source.metadata!);
  return minterFor(source.credential).accessToken(s, source.credential);
}
