// What breaks auth silently: proxies that swallow the metadata server, a wrong clock, a metadata override pointing
// nowhere.
import { GOOGLE_TOKEN_URL, METADATA_URLS } from '../../endpoints.ts';
import { displayProxy, exemptFromProxy, proxyConfigured, proxyFor } from '../../net/proxy-env.ts';
import type { Check } from '../../report.ts';
import { clockSkewSeconds, describeSkew, SKEW_TOLERANCE_S } from '../../google/verify.ts';
import { check, type DoctorCheck } from './check.ts';

export const environment: DoctorCheck = async (ctx, _options, { discovery, exchanges }) => {
  const out: Check[] = [];
  const env = ctx.env;
  const proxy = proxyFor(new URL(GOOGLE_TOKEN_URL), env);
  if (proxyConfigured(env)) {
    const via = proxy ? `idcall sends requests for Google's endpoints (e.g. oauth2.googleapis.com) through ${displayProxy(proxy)}` : 'NO_PROXY exempts Google\'s endpoints, so idcall reaches them directly';
    // Google's libraries (gaxios) send every URL to the proxy, http ones included, unless NO_PROXY says otherwise.
    const metadataProxied = METADATA_URLS.some((url) => !exemptFromProxy(new URL(url), env));
    out.push(
      metadataProxied
        ? check('proxy', 'warn', `${via}; NO_PROXY does not exempt the metadata server, so clients that honour the proxy (idcall does not) send metadata requests to it`, {
            fix: 'export NO_PROXY=169.254.169.254,metadata,metadata.google.internal${NO_PROXY:+,$NO_PROXY}',
          })
        : check('proxy', 'ok', `${via}; NO_PROXY exempts the metadata server`),
    );
  }
  const dated = [...exchanges].reverse().find((e) => e.date && e.status !== undefined && !/computeMetadata/.test(e.url));
  if (dated) {
    const skew = clockSkewSeconds(ctx.now(), dated.date!);
    out.push(
      Math.abs(skew) > SKEW_TOLERANCE_S
        ? check('clock', 'warn', `${describeSkew(skew)} (from the Date header of ${new URL(dated.url).host})`, { fix: 'Synchronise the clock: sudo timedatectl set-ntp true', code: 'CLOCK_SKEW' })
        : check('clock', 'ok', `clock within ${SKEW_TOLERANCE_S} s of Google's (${skew >= 0 ? '+' : ''}${skew} s)`),
    );
  } else out.push(check('clock', 'skipped', 'clock not compared: no Google endpoint answered'));
  const meta = discovery?.candidates.find((c) => c.origin === 'metadata_server');
  if (meta && !meta.defaultAddress && !meta.present) {
    out.push(check('metadata-host', 'warn', `${meta.via} points at ${meta.path}, which is not a metadata server (${meta.note ?? 'no answer'})`, { fix: `Unset ${meta.via} off Google Cloud, or point it at a metadata server (host:port).` }));
  }
  return { checks: out };
};
