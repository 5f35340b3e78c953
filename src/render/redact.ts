// The one redaction function every renderer, log line and error message goes through.

const PATTERNS: [RegExp, string][] = [
  // PEM private keys, raw or JSON-escaped (\n inside a string).
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----(\\n|\n)?/g, '[REDACTED PRIVATE KEY]'],
  // JWTs (ID tokens, assertions, subject tokens): header.payload.signature, header starting with {"
  [/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '[REDACTED JWT]'],
  // Google OAuth access tokens.
  [/ya29\.[A-Za-z0-9_.-]+/g, '[REDACTED ACCESS TOKEN]'],
  // Google refresh tokens.
  [/1\/\/0[A-Za-z0-9_-]{10,}/g, '[REDACTED REFRESH TOKEN]'],
  // OAuth client secrets of the modern format.
  [/GOCSPX-[A-Za-z0-9_-]{10,}/g, '[REDACTED CLIENT SECRET]'],
];

const known = new Set<string>();

/** Secrets seen at run time whose shape no pattern catches (a custom token format, a secret in a header). */
export function registerSecret(secret: string | undefined | null): void {
  if (secret && secret.length >= 8) known.add(secret);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Redact every string inside a JSON-able value. */
export function redactValue<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value))) as T;
}
