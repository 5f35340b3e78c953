// What kind of Google front end a URL is, and the audience an ID token for it needs (google-wire.md §7, §11–§13).
// Detection from the host is a first guess; the answer (IAP's and ESPv2's own headers and bodies) is decisive, and
// `--target-kind` overrides both.

export const TARGET_KINDS = ['cloud_run', 'cloud_functions', 'iap', 'api_gateway', 'other'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** Why the audience is what it is: the user said so, the URL's origin, or a Cloud Functions URL with its function. */
export type AudienceSource = 'flag' | 'origin' | 'function_url';

export interface TargetInfo {
  kind: TargetKind;
  /** How the kind was decided: --target-kind, the host name, or the target's own answer. */
  kindSource: 'flag' | 'host' | 'answer';
  audience: string;
  audienceSource: AudienceSource;
}

/** The kind a host name says (run.app, cloudfunctions.net, appspot.com, gateway.dev, endpoints.*.cloud.goog). */
export function kindFromHost(hostname: string): TargetKind {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host.endsWith('.run.app')) return 'cloud_run';
  if (host.endsWith('.cloudfunctions.net')) return 'cloud_functions';
  // App Engine is served through IAP when it is private at all: an appspot.com app has no invoker check of its own.
  if (host.endsWith('.appspot.com')) return 'iap';
  if (host.endsWith('.gateway.dev') || /\.endpoints\.[^.]+\.cloud\.goog$/.test(host)) return 'api_gateway';
  return 'other';
}

/**
 * The audience when none is given: a Cloud Functions URL needs its function name (1st gen rejects the bare host,
 * 2nd gen accepts the function URL as a custom audience, §12); everything else takes the origin. IAP and API Gateway
 * expect something the URL does not say (an OAuth client ID, `https://SERVICE_NAME`): the origin is then a guess the
 * verdict explains.
 */
export function defaultAudience(url: URL, kind: TargetKind): { audience: string; audienceSource: AudienceSource } {
  if (kind === 'cloud_functions') {
    const fn = url.pathname.split('/').find(Boolean);
    if (fn) return { audience: `${url.origin}/${fn}`, audienceSource: 'function_url' };
  }
  return { audience: url.origin, audienceSource: 'origin' };
}

/** The target a URL names, with --audience (used exactly as given, trimmed) and --target-kind applied. */
export function describeTarget(url: URL, flags: { audience?: string; kind?: TargetKind }): TargetInfo {
  const kind = flags.kind ?? kindFromHost(url.hostname);
  const kindSource = flags.kind ? 'flag' : 'host';
  const given = flags.audience?.trim();
  if (given) return { kind, kindSource, audience: given, audienceSource: 'flag' };
  return { kind, kindSource, ...defaultAudience(url, kind) };
}

/** The kind an audience names when it is a URL (token and doctor have no URL to call, only --audience). */
export function kindOfAudience(audience: string): TargetKind | undefined {
  if (!/^https?:\/\//i.test(audience)) return undefined;
  try {
    return kindFromHost(new URL(audience).hostname);
  } catch {
    return undefined;
  }
}

/** Recognise the front end from its answer: IAP marks its own responses; ESPv2 answers in its JSON envelope. */
export function kindFromAnswer(status: number, headers: Record<string, string>, body: string): TargetKind | null {
  if (headers['x-goog-iap-generated-response'] === 'true') return 'iap';
  if (status >= 400 && /application\/json/i.test(headers['content-type'] ?? '') && espv2Message(body) !== null) return 'api_gateway';
  return null;
}

/**
 * Whether an answer bears Google's front end's marks: its Server header, the trace header it adds, Cloud Run's
 * `invalid_token` challenge or its error pages. An answer without any came from something else (the application, a
 * proxy of its own), so an IAM or audience verdict about it would be a guess.
 */
export function answeredByGoogle(headers: Record<string, string>, body: string): boolean {
  if (/^(Google Frontend|ESF|gws|Google)\b/i.test(headers.server ?? '') || headers['x-cloud-trace-context'] !== undefined) return true;
  if (/error="invalid_token"/.test(headers['www-authenticate'] ?? '') && /could not be verified/.test(headers['www-authenticate'] ?? '')) return true;
  return /<h1>Error: (Unauthorized|Forbidden)<\/h1>|Your client does not have permission to get URL/.test(body);
}

/** ESPv2's `{"code":N,"message":"…"}` reply, or null when the body is not one. */
export function espv2Message(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { code, message } = parsed as { code?: unknown; message?: unknown };
    return typeof code === 'number' && typeof message === 'string' && Object.keys(parsed).length === 2 ? message : null;
  } catch {
    return null;
  }
}
