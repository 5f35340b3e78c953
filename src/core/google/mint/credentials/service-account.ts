// A service-account key: a signed JWT-bearer grant at the token endpoint, with target_audience for an ID token.
import { CLOUD_PLATFORM_SCOPE } from '../../../endpoints.ts';
import type { LoadedCredential } from '../../load.ts';
import { guard, requireToken, transporter, type Session } from '../session.ts';
import type { CredentialMinter } from './types.ts';

async function jwtClient(s: Session, credential: LoadedCredential, scopes?: string[]) {
  const { JWT } = await import('../../auth-library.ts');
  const json = credential.json;
  // A project id given, so the library never goes looking for one (a metadata-server round trip off Google Cloud).
  const projectId = typeof json.project_id === 'string' ? { projectId: json.project_id } : {};
  return new JWT({ email: json.client_email, key: json.private_key, keyId: json.private_key_id, ...projectId, ...(scopes ? { scopes } : {}), transporter: transporter(s) });
}

export const serviceAccount: CredentialMinter = {
  async idToken(s, credential) {
    const client = await jwtClient(s, credential);
    const token = await guard(s, 'token', () => client.fetchIdToken(s.options.audience));
    return { token, method: 'JWT-bearer grant with target_audience at the token endpoint', principal: credential.principal, caller: null, userToken: false };
  },
  async accessToken(s, credential) {
    const client = await jwtClient(s, credential, [CLOUD_PLATFORM_SCOPE]);
    const { token } = await guard(s, 'token', () => client.getAccessToken());
    return { token: requireToken(token), principal: credential.principal };
  },
};
