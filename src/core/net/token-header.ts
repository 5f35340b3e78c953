// Where a token goes, decided once for call, the proxy and the library: the preferred header, unless the client's
// own Authorization is there, which is kept while the token travels in X-Serverless-Authorization.

/** A lower-cased header name: authorization, x-serverless-authorization, proxy-authorization (IAP) or another. */
export type TokenHeader = string;

/**
 * Put the token where the target reads it without clobbering the client's own credentials: a client Authorization
 * header stays, and the token goes to X-Serverless-Authorization. Returns the header used, or null when the client
 * already filled both.
 */
export function placeToken(headers: Record<string, string | string[]>, preferred: TokenHeader, token: string): TokenHeader | null {
  let name: TokenHeader = preferred;
  if (name === 'authorization' && headers.authorization !== undefined) name = 'x-serverless-authorization';
  if (headers[name] !== undefined) return null;
  headers[name] = `Bearer ${token}`;
  return name;
}
