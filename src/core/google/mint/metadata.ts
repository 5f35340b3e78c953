// The metadata server (GCE, Cloud Run, GKE): the instance's own ID token and access token.
import type { MetadataTarget } from '../discover.ts';
import { guard, parseJsonObject, requireToken, type AccessToken, type Session } from './session.ts';

export async function metadataIdentity(s: Session, target: MetadataTarget): Promise<string> {
  // The audience must be encoded: a custom audience may hold ? and &.
  const url = `${target.base}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(s.options.audience)}&format=${s.options.format}`;
  return guard(s, 'metadata', async () => {
    const res = await s.http(url, { headers: { 'Metadata-Flavor': 'Google' }, direct: true });
    const text = res.text();
    if (!res.ok) throw Object.assign(new Error(`metadata server answered ${res.status}`), { status: res.status, body: text });
    if (res.headers.get('metadata-flavor') !== 'Google') throw new Error('the response has no Metadata-Flavor: Google header');
    if (text.split('.').length !== 3) throw new Error('the answer is not a JWT');
    return text.trim();
  });
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
