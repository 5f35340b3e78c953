// The one redaction function every renderer, log line, proxy error body and error message goes through, and the
// registry of secrets seen at run time (each credential file's secrets are registered the moment it is read).

const PATTERNS: [RegExp, string][] = [
  // PEM private keys, raw or JSON-escaped (\n inside a string); one cut off before its END line, to the end.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----(\\n|\n)?|$)/g, '[REDACTED PRIVATE KEY]'],
  // JWTs (ID tokens, assertions, subject tokens): header.payload.signature, header starting with {", and what is
  // left of one that an excerpt cut short (header and part of the payload).
  [/eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}/g, '[REDACTED JWT]'],
  // Google OAuth access tokens.
  [/ya29\.[A-Za-z0-9_.-]+/g, '[REDACTED ACCESS TOKEN]'],
  // Google refresh tokens, also percent-encoded (1%2F%2F0…) as a form body or URL echoes them.
  [/1(?:\/\/|%2F%2F)0[A-Za-z0-9_-]{10,}/gi, '[REDACTED REFRESH TOKEN]'],
  // OAuth client secrets of the modern format.
  [/GOCSPX-[A-Za-z0-9_-]{10,}/g, '[REDACTED CLIENT SECRET]'],
  // User names and passwords inside URLs (https://user:pass@host/): the host stays, the userinfo never shows.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi, '$1***@'],
];

/**
 * Query parameters whose names look secret: their values become `***` in every URL idcall prints (a key= or
 * token= in a target URL or a redirect's Location).
 */
const SECRET_PARAMETERS = ['key', 'api_key', 'apikey', 'token', 'access_token', 'id_token', 'refresh_token', 'secret', 'client_secret', 'password', 'passwd', 'pwd', 'sig', 'signature', 'credential', 'credentials', 'auth', 'code', 'x-goog-signature', 'x-amz-signature', 'x-amz-credential', 'x-goog-credential'];
const SECRET_QUERY = new RegExp(`([?&;](?:${SECRET_PARAMETERS.map((p) => p.replace(/[-]/g, '\\-')).join('|')})=)[^&#\\s"'<>]*`, 'gi');

const known = new Set<string>();

/** Secrets seen at run time whose shape no pattern catches, in every form output may carry them in. */
export function registerSecret(secret: string | undefined | null): void {
  if (!secret || secret.length < 8) return;
  known.add(secret);
  known.add(encodeURIComponent(secret));
  known.add(new URLSearchParams({ v: secret }).toString().slice(2));
  known.add(JSON.stringify(secret).slice(1, -1));
}

// Field names in credential files (and nested source credentials) that hold a secret.
const SECRET_FIELDS = new Set(['private_key', 'refresh_token', 'client_secret', 'access_token', 'id_token', 'subject_token', 'token', 'password', 'secret']);

/** Register every secret-valued field of a credential file, however deeply nested (impersonation sources). */
export function registerCredentialSecrets(value: unknown, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
    if (typeof field === 'string' && SECRET_FIELDS.has(name.toLowerCase())) registerSecret(field);
    else registerCredentialSecrets(field, depth + 1);
  }
}

export function redact(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  // Secret-named parameters first: their whole value becomes ***, never part of a marker a pattern left in it.
  out = out.replace(SECRET_QUERY, '$1***');
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * A body's first `limit` bytes for display. Redacted over all that was read of it before it is cut, so the cut never
 * splits a secret into a part no pattern knows; a known secret cut off at the end of what was read goes too.
 */
export function redactedExcerpt(read: Buffer, limit: number): string {
  let text = redact(read.toString('utf8'));
  for (const secret of known) {
    for (let n = Math.min(secret.length - 1, text.length); n >= 8; n--) {
      if (text.endsWith(secret.slice(0, n))) {
        text = `${text.slice(0, -n)}[REDACTED]`;
        break;
      }
    }
  }
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= limit ? text : bytes.subarray(0, limit).toString('utf8');
}

/** Redact every string inside a JSON-able value. */
export function redactValue<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value))) as T;
}
