// The metadata server (GCE, Cloud Run, GKE): the instance's own ID token and access token.
import type { MetadataTarget } from '../discover.ts';
import { guard, parseJsonObject, requireToken, type AccessToken, type Session } from './session.ts';

/**
 * The instance's ID token. Two of GKE's quirks (§14.1) are met, each with a warning: a token answer without
 * Metadata-Flavor (discovery already saw the header, so this is the metadata server), and a 400 to format=full,
 * retried with format=standard (whose token has no email claim).
 */
export async function metadataIdentity(s: Session, target: MetadataTarget): Promise<{ token: string; warnings: string[] }> {
  const warnings: string[] = [];
  const ask = (format: string) =>
    guard(s, 'metadata', async () => {
      // The audience must be encoded: a custom audience may hold ? and &.
      const url = `${target.base}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(s.options.audience)}&format=${format}`;
      const res = await s.http(url, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
      const text = res.text();
      if (res.status === 400 && format === 'full') return { retryStandard: true as const };
      if (!res.ok) throw Object.assign(new Error(`metadata server answered ${res.status}`), { status: res.status, body: text });
      if (text.trim().split('.').length !== 3) throw new Error('the answer is not a JWT');
      if (res.headers.get('metadata-flavor') !== 'Google') warnings.push(`the metadata server's token answer had no Metadata-Flavor: Google header (GKE's metadata server answers so); accepted, since the probe saw the header`);
      return { token: text.trim() };
    });
  let answer = await ask(s.options.format);
  if ('retryStandard' in answer) {
    warnings.push('the metadata server refused format=full (400); asked again with format=standard, whose token has no email claim (IAP needs it)');
    answer = await ask('standard');
  }
  if ('retryStandard' in answer) throw new Error('the metadata server refused format=standard too');
  return { token: answer.token, warnings };
}

export async function metadataAccessToken(s: Session, target: MetadataTarget): Promise<AccessToken> {
  const data = await guard(s, 'metadata', async () => {
    const res = await s.http(`${target.base}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`metadata server answered ${res.status}`), { status: res.status, body: text });
    return parseJsonObject(text, 'the metadata server');
  });
  const emailRes = await guard(s, 'metadata', async () => {
    const res = await s.http(`${target.base}/computeMetadata/v1/instance/service-accounts/default/email`, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    return res.ok ? res.text().trim() : null;
  });
  return { token: requireToken(data.access_token), principal: emailRes };
}
