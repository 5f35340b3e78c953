// Decode and check JWTs on the client side, with typed errors only.
import { createPublicKey, verify } from 'node:crypto';

export class JwtDecodeError extends Error {
  override name = 'JwtDecodeError';
}

export interface DecodedToken {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function decodeJwt(token: string): DecodedToken {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw new JwtDecodeError(`not a JWT: expected 3 dot-separated parts, found ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  const part = (text: string, name: string): Record<string, unknown> => {
    if (!B64URL.test(text)) throw new JwtDecodeError(`the ${name} is not base64url`);
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    } catch {
      throw new JwtDecodeError(`the ${name} is not JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtDecodeError(`the ${name} is not a JSON object`);
    return value as Record<string, unknown>;
  };
  const header = part(h, 'header');
  const claims = part(p, 'payload');
  if (!B64URL.test(s)) throw new JwtDecodeError('the signature is not base64url');
  return { header, claims, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

export function decodeJwtClaims(token: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(token).claims;
  } catch {
    return undefined;
  }
}

export type SignatureCheck = { status: 'valid' } | { status: 'invalid'; reason: string } | { status: 'unknown'; reason: string };

/** Verify an RS256 signature against a JWKS document ({keys: [...]}) or Google's PEM map ({kid: cert}). */
export function verifySignature(token: DecodedToken, certs: unknown): SignatureCheck {
  if (token.header.alg !== 'RS256') return { status: 'invalid', reason: `alg is ${JSON.stringify(token.header.alg)}, Google signs ID tokens with RS256` };
  const kid = token.header.kid;
  if (typeof kid !== 'string') return { status: 'invalid', reason: 'the header has no kid' };
  let key;
  try {
    if (certs && typeof certs === 'object' && Array.isArray((certs as { keys?: unknown }).keys)) {
      const jwk = (certs as { keys: { kid?: string }[] }).keys.find((k) => k.kid === kid);
      if (!jwk) return { status: 'invalid', reason: `kid ${kid.slice(0, 8)}… is not among Google's current keys (a forged token, or one older than a key rotation)` };
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } else if (certs && typeof certs === 'object') {
      const pem = (certs as Record<string, unknown>)[kid];
      if (typeof pem !== 'string') return { status: 'invalid', reason: `kid ${kid.slice(0, 8)}… is not among Google's current keys` };
      key = createPublicKey(pem);
    } else {
      return { status: 'unknown', reason: 'the certificate document is not a JWKS or PEM map' };
    }
  } catch {
    return { status: 'unknown', reason: 'the certificate document could not be parsed' };
  }
  return verify('sha256', Buffer.from(token.signingInput), key, token.signature) ? { status: 'valid' } : { status: 'invalid', reason: 'the signature does not match Google\'s key' };
}

export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];
