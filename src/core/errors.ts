// One error class with a stable code; exit statuses are decided here and nowhere else.

export const CAUSE_CODES = [
  'OK',
  'NO_CREDENTIALS',
  'CREDENTIALS_FILE_ERROR',
  'UNSUPPORTED_CREDENTIAL_TYPE',
  'USER_TOKEN_AUDIENCE',
  'KEY_REJECTED',
  'REFRESH_TOKEN_REJECTED',
  'REAUTH_REQUIRED',
  'IMPERSONATION_DENIED',
  'FEDERATION_FAILED',
  'METADATA_ERROR',
  'TOKEN_ENDPOINT_ERROR',
  'AUDIENCE_MISMATCH',
  'TOKEN_EXPIRED',
  'CLOCK_SKEW',
  'INVOKER_DENIED',
  'NOT_FOUND',
  'TARGET_UNREACHABLE',
  'TLS_ERROR',
  'TIMEOUT',
  'TARGET_ERROR',
  'USAGE_ERROR',
  'SIGNATURE_INVALID',
  'SIGNATURE_UNVERIFIED',
  'TOKEN_NOT_SEEN',
  'EMAIL_CLAIM_MISSING',
  'ISSUER_NOT_ACCEPTED',
  'SCOPE_INSUFFICIENT',
  'OUTPUT_ERROR',
  'INTERNAL_ERROR',
] as const;

export type CauseCode = (typeof CAUSE_CODES)[number];

export class IdcallError extends Error {
  override name = 'IdcallError';
  readonly code: CauseCode;
  readonly fix: string;

  constructor(code: CauseCode, message: string, fix = '', options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fix = fix;
  }
}

export const usageError = (message: string, fix = 'Run `idcall --help` for usage.') => new IdcallError('USAGE_ERROR', message, fix);

/**
 * Exit statuses (the contract in docs/json-output.md):
 * 0 the call got a 2xx; 2 usage error; 3 credentials could not be found, loaded or turned into a token;
 * 4 the target rejected the token (401 or 403); 5 the target could not be reached or timed out; 1 any other non-2xx.
 */
export function exitCodeFor(code: CauseCode, side?: 'credential' | 'target'): number {
  // A code that can arise on either side (a skewed clock, a timeout) takes the status of the side that failed.
  if (code !== 'USAGE_ERROR' && code !== 'OK' && side === 'credential') return 3;
  switch (code) {
    case 'OK':
      return 0;
    case 'USAGE_ERROR':
      return 2;
    case 'NO_CREDENTIALS':
    case 'CREDENTIALS_FILE_ERROR':
    case 'UNSUPPORTED_CREDENTIAL_TYPE':
    case 'KEY_REJECTED':
    case 'REFRESH_TOKEN_REJECTED':
    case 'REAUTH_REQUIRED':
    case 'IMPERSONATION_DENIED':
    case 'FEDERATION_FAILED':
    case 'METADATA_ERROR':
    case 'TOKEN_ENDPOINT_ERROR':
    case 'SCOPE_INSUFFICIENT':
      return 3;
    case 'USER_TOKEN_AUDIENCE':
    case 'AUDIENCE_MISMATCH':
    case 'TOKEN_EXPIRED':
    case 'CLOCK_SKEW':
    case 'INVOKER_DENIED':
      return 4;
    case 'SIGNATURE_INVALID':
    // The target says no token reached it, or that the token lacks what it needs: the token was rejected.
    case 'TOKEN_NOT_SEEN':
    case 'EMAIL_CLAIM_MISSING':
    case 'ISSUER_NOT_ACCEPTED':
      return 4;
    case 'TARGET_UNREACHABLE':
    case 'TLS_ERROR':
    case 'TIMEOUT':
    // The certificates could not be fetched: like an unreachable target, a check that could not be made.
    case 'SIGNATURE_UNVERIFIED':
      return 5;
    case 'NOT_FOUND':
    case 'TARGET_ERROR':
    case 'OUTPUT_ERROR':
    case 'INTERNAL_ERROR':
      return 1;
  }
}

/** Anything thrown that is not ours becomes ours, so nothing downstream branches on message text. */
export function asIdcallError(err: unknown, fallback: CauseCode, message?: string, fix = ''): IdcallError {
  if (err instanceof IdcallError) return err;
  const text = message ?? (err instanceof Error ? err.message : String(err));
  return new IdcallError(fallback, text, fix, { cause: err });
}
