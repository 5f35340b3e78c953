// Walk the ADC order exactly as Google's libraries do, and say which source wins and which are shadowed.
import { isRegularFile } from '../files.ts';
import { join, win32 } from 'node:path';
import type { Context } from '../context.ts';
import { METADATA_DEFAULT_HOST } from '../endpoints.ts';
import { usageError } from '../errors.ts';
import type { Origin } from '../report.ts';
import { createRecordingClient, describeNetworkError, isTimeout, type Exchange } from '../net/transport.ts';

export interface Candidate {
  origin: Origin;
  /** File path, or the metadata server URL. */
  path: string | null;
  /** The variable or flag that named it, for messages. */
  via: string;
  present: boolean;
  /** Why it is not present (missing file, probe timed out, detection disabled). */
  note?: string;
  /** The metadata server at its default address, named by no variable. */
  defaultAddress?: boolean;
  /** The metadata server was probed and did not answer as one: how. */
  probeFailure?: 'timeout' | 'unreachable' | 'not_metadata';
}

export interface Discovery {
  winner: Candidate | null;
  candidates: Candidate[];
  metadata: MetadataTarget;
  exchanges: Exchange[];
}

export interface MetadataTarget {
  /** Base URL without trailing slash, e.g. http://169.254.169.254 */
  base: string;
  /** Where the address came from, for messages. */
  via: string;
  detection: 'assume-present' | 'none' | 'bios-only' | 'ping-only' | 'default';
}

export interface DiscoverOptions {
  credentialsFlag?: string;
  /** Total bound for the metadata probe. */
  metadataTimeoutMs: number;
  /** Probe the metadata server even when a file source wins (doctor always does; call only when it is likely there). */
  probeMetadata: 'always' | 'when-needed' | 'when-likely';
}

const DETECTION_VALUES = ['assume-present', 'none', 'bios-only', 'ping-only'] as const;

function wellKnownFile(ctx: Pick<Context, 'env' | 'homedir' | 'platform'>): string {
  const { env } = ctx;
  if (env.CLOUDSDK_CONFIG) return join(env.CLOUDSDK_CONFIG, 'application_default_credentials.json');
  if (ctx.platform === 'win32') return win32.join(env.APPDATA ?? '', 'gcloud', 'application_default_credentials.json');
  return join(ctx.homedir, '.config', 'gcloud', 'application_default_credentials.json');
}

export function gcloudConfigDir(ctx: Pick<Context, 'env' | 'homedir' | 'platform'>): string {
  if (ctx.env.CLOUDSDK_CONFIG) return ctx.env.CLOUDSDK_CONFIG;
  if (ctx.platform === 'win32') return win32.join(ctx.env.APPDATA ?? '', 'gcloud');
  return join(ctx.homedir, '.config', 'gcloud');
}

/** The metadata server address as gcp-metadata resolves it: GCE_METADATA_IP, then GCE_METADATA_HOST, then the link-local IP. */
function metadataTarget(env: Context['env']): MetadataTarget {
  const detection = env.METADATA_SERVER_DETECTION?.trim();
  if (detection && !(DETECTION_VALUES as readonly string[]).includes(detection)) {
    throw usageError(
      `METADATA_SERVER_DETECTION=${JSON.stringify(detection)} is not one of ${DETECTION_VALUES.join(', ')}.`,
      'Unset METADATA_SERVER_DETECTION, or set it to one of the values above.',
    );
  }
  const [via, raw] = env.GCE_METADATA_IP ? ['GCE_METADATA_IP', env.GCE_METADATA_IP] : env.GCE_METADATA_HOST ? ['GCE_METADATA_HOST', env.GCE_METADATA_HOST] : ['default', METADATA_DEFAULT_HOST];
  const value = raw.trim();
  let parsed: URL;
  try {
    parsed = new URL(/^[a-z]+:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw usageError(`${via}=${JSON.stringify(value)} is not a host or host:port.`, `Set ${via} to a host[:port], for example 169.254.169.254 or 127.0.0.1:8080.`);
  }
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.username || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw usageError(
      `${via}=${JSON.stringify(value)} must be a host[:port] with no path: Google's libraries append /computeMetadata/v1 themselves.`,
      `Set ${via} to just the host and port, for example ${parsed.host || '169.254.169.254'}.`,
    );
  }
  return { base: `${parsed.protocol}//${parsed.host}`, via, detection: (detection as MetadataTarget['detection']) || 'default' };
}

export async function discover(ctx: Context, options: DiscoverOptions): Promise<Discovery> {
  const metadata = metadataTarget(ctx.env);
  const candidates: Candidate[] = [];
  const exchanges: Exchange[] = [];

  if (options.credentialsFlag !== undefined) {
    candidates.push({ origin: 'flag', path: options.credentialsFlag, via: '--credentials', present: true });
  }
  const gac = ctx.env.GOOGLE_APPLICATION_CREDENTIALS ?? ctx.env.google_application_credentials;
  if (gac !== undefined && gac !== '') {
    // Google's libraries fail on a GOOGLE_APPLICATION_CREDENTIALS that points nowhere rather than fall back, so it is present either way.
    candidates.push({ origin: 'GOOGLE_APPLICATION_CREDENTIALS', path: gac, via: 'GOOGLE_APPLICATION_CREDENTIALS', present: true });
  }
  const wellKnown = wellKnownFile(ctx);
  const wellKnownExists = await isRegularFile(wellKnown);
  candidates.push({
    origin: 'well_known_file',
    path: wellKnown,
    via: ctx.env.CLOUDSDK_CONFIG ? 'CLOUDSDK_CONFIG' : 'gcloud config directory',
    present: wellKnownExists,
    ...(wellKnownExists ? {} : { note: 'not found (run `gcloud auth application-default login` to create it)' }),
  });

  const fileWins = candidates.some((c) => c.present);
  const likely = metadata.via !== 'default' || Boolean(ctx.env.K_SERVICE || ctx.env.CLOUD_RUN_JOB || ctx.env.FUNCTION_NAME || ctx.env.CLOUD_RUN_WORKER_POOL);
  const shouldProbe = options.probeMetadata === 'always' || !fileWins || (options.probeMetadata === 'when-likely' && likely);
  const metaCandidate: Candidate = { origin: 'metadata_server', path: metadata.base, via: metadata.via === 'default' ? 'default address' : metadata.via, present: false, ...(metadata.via === 'default' ? { defaultAddress: true } : {}) };
  if (metadata.detection === 'none') metaCandidate.note = 'skipped: METADATA_SERVER_DETECTION=none';
  else if (metadata.detection === 'assume-present') metaCandidate.present = true;
  else if (metadata.detection === 'bios-only') metaCandidate.note = 'not probed: METADATA_SERVER_DETECTION=bios-only and this machine is not a Google VM';
  else if (!shouldProbe) metaCandidate.note = 'not probed (a credential file wins)';
  else {
    const probe = await probeMetadata(ctx, metadata, options.metadataTimeoutMs, exchanges);
    metaCandidate.present = probe.present;
    if (probe.note) metaCandidate.note = probe.note;
    if (probe.failure) metaCandidate.probeFailure = probe.failure;
  }
  candidates.push(metaCandidate);
  return { winner: candidates.find((c) => c.present) ?? null, candidates, metadata, exchanges };
}

async function probeMetadata(ctx: Context, target: MetadataTarget, timeoutMs: number, exchanges: Exchange[]): Promise<{ present: boolean; note?: string; failure?: Candidate['probeFailure'] }> {
  const http = createRecordingClient({ timeoutMs, exchanges, base: ctx.http, now: ctx.monotonic, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  try {
    const res = await http(`${target.base}/computeMetadata/v1/instance`, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    if (res.headers.get('metadata-flavor') !== 'Google') {
      return { present: false, note: `answered ${res.status} without the Metadata-Flavor: Google header: it is not a metadata server`, failure: 'not_metadata' };
    }
    if (res.status >= 400) return { present: false, note: `answered ${res.status}`, failure: 'not_metadata' };
    return { present: true };
  } catch (err) {
    // It answered, with more than any metadata answer holds: a web server or a hostile one, not a metadata server.
    if ((err as { code?: string }).code === 'ERR_BODY_TOO_LARGE') return { present: false, note: `answered with a body larger than any metadata answer: it is not a metadata server`, failure: 'not_metadata' };
    return { present: false, note: `not reachable: ${describeNetworkError(err, timeoutMs)}`, failure: isTimeout(err) ? 'timeout' : 'unreachable' };
  }
}
