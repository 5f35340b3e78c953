// One mint's session: its options, its bounded and recorded transport, and the helpers every protocol module shares
// (guard a phase so a failure blames the right component, demand a token, parse JSON bodies).
import type { Context } from '../../context.ts';
import { IdcallError } from '../../errors.ts';
import type { LoadedCredential } from '../load.ts';
import { classifyFailure, type IamParty, type Phase } from '../classify.ts';
import type { Endpoints } from '../../endpoints.ts';
import { createRecordingClient, type Exchange } from '../../net/transport.ts';
import type { HttpClient } from '../../net/http.ts';
import { libraryTransporter } from '../gal-transport.ts';

export interface MintOptions {
  audience: string;
  /** `--impersonate-service-account`: mint for this service account whatever the source. */
  impersonate?: string;
  delegates: string[];
  includeEmail: boolean;
  /** Metadata server token format. */
  format: 'standard' | 'full';
  endpoints: Endpoints;
  /** Bound for each request to a Google endpoint. */
  timeoutMs: number;
}

export interface Session {
  ctx: Context;
  options: MintOptions;
  exchanges: Exchange[];
  http: HttpClient;
  /** The access token of another credential (an impersonation's source): the credential table's, without a cycle. */
  accessTokenOf(credential: LoadedCredential): Promise<AccessToken>;
}

export interface AccessToken {
  token: string;
  principal: string | null;
}

/** What one credential type's ID-token path returns. */
export interface Minted {
  token: string;
  /** How it was obtained, in words: "JWT-bearer grant at …/token". */
  method: string;
  /** Who the token speaks for (email), when known. */
  principal: string | null;
  /** The source identity behind an impersonation. */
  caller: string | null;
  /** A user's own ID token: its audience is the OAuth client, whatever was asked. */
  userToken: boolean;
  /** What was odd but worked around (a GKE metadata quirk): the step is a warning. */
  warnings?: string[];
}

/**
 * One bound for the whole step: every request, retry and backoff of a mint fits in `timeoutMs`,
 * so a hanging or flapping endpoint costs at most that, never the libraries' own minutes of retries.
 */
export function session(ctx: Context, options: MintOptions, exchanges: Exchange[], credential: LoadedCredential | null, accessTokenOf: Session['accessTokenOf']): Session {
  const deadline = ctx.monotonic() + options.timeoutMs;
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(ctx.signal ? [ctx.signal] : [])]);
  const endpoints = { ...options.endpoints, ...keyTokenUri(options.endpoints, credential) };
  return {
    ctx,
    options: { ...options, endpoints },
    exchanges,
    http: createRecordingClient({ endpoints, timeoutMs: options.timeoutMs, exchanges, base: ctx.http, signal, now: ctx.monotonic, retry: { attempts: 4, deadline } }),
    accessTokenOf,
  };
}

/**
 * google-auth-library posts a key's JWT grant to https://oauth2.googleapis.com/token whatever the key says: route it
 * to the key's token_uri (as Python's and Go's libraries honour it) unless a flag or IDCALL_TOKEN_URL overrides.
 */
function keyTokenUri(endpoints: Endpoints, credential: LoadedCredential | null): Endpoints {
  if (endpoints.token || !credential) return {};
  const key = credential.type === 'service_account' ? credential.json : credential.json.source_credentials?.type === 'service_account' ? credential.json.source_credentials : null;
  return typeof key?.token_uri === 'string' ? { token: key.token_uri } : {};
}

// Retries are the recording client's (bounded by the step's deadline); gaxios' own would outlast it.
export const transporter = (s: Session) => libraryTransporter(s.http) as never;

/** Run one protocol exchange; any failure becomes an IdcallError blaming the right component. */
export async function guard<T>(s: Session, phase: Phase, work: () => Promise<T>, who?: IamParty): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyFailure(err, phase, s.exchanges.at(-1), who);
  }
}

export function requireToken(token: unknown): string {
  if (typeof token !== 'string' || token === '') throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'The token endpoint answered without a token.', 'Check that the token URL points at Google (or a faithful proxy).');
  return token;
}

export function parseJsonObject(text: string, who: string): Record<string, any> {
  try {
    const value = JSON.parse(text);
    if (typeof value === 'object' && value !== null) return value;
  } catch {
    // fall through
  }
  // A plain error: guard() classifies it by phase (metadata, STS, IAM), with the 200 status it saw.
  throw new Error(`${who} answered with a body that is not JSON (${describeBody(text)})`);
}

function describeBody(text: string): string {
  if (/<html|<!doctype/i.test(text)) return 'an HTML page';
  if (text.length === 0) return 'empty';
  return `${text.length} bytes`;
}
