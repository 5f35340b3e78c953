// A user's refresh token (gcloud auth application-default login): the user's own ID token, whose audience is always
// the OAuth client, never the service; and an access token, usable as an impersonation source.
import { GOOGLE_TOKEN_URL } from '../../../endpoints.ts';
import { IdcallError } from '../../../errors.ts';
import { decodeJwtClaims } from '../../jwt.ts';
import { guard, requireToken, transporter, type Session } from '../session.ts';
import type { CredentialMinter } from './types.ts';

async function userClient(s: Session, json: Record<string, any>) {
  const { UserRefreshClient } = await import('../../auth-library.ts');
  return new UserRefreshClient({
    clientId: json.client_id,
    clientSecret: json.client_secret,
    refreshToken: json.refresh_token,
    endpoints: { oauth2TokenUrl: s.options.endpoints.token ?? json.token_uri ?? GOOGLE_TOKEN_URL },
    transporter: transporter(s),
  });
}

export const authorizedUser: CredentialMinter = {
  async idToken(s, credential) {
    const client = await userClient(s, credential.json);
    const token = await guard(s, 'refresh', () => client.fetchIdToken(s.options.audience));
    if (typeof token !== 'string' || !token) {
      throw new IdcallError('TOKEN_ENDPOINT_ERROR', 'The token endpoint refreshed the user credentials but returned no id_token.', 'Log in again with the openid scope: gcloud auth application-default login');
    }
    const claims = decodeJwtClaims(token);
    return { token, method: 'refresh-token grant (the user\'s own ID token)', principal: (claims?.email as string) ?? credential.principal, caller: null, userToken: true };
  },
  async accessToken(s, credential) {
    const client = await userClient(s, credential.json);
    const { token } = await guard(s, 'refresh', () => client.getAccessToken());
    const idToken = (client.credentials as { id_token?: string }).id_token;
    const email = idToken ? (decodeJwtClaims(idToken)?.email as string | undefined) : undefined;
    return { token: requireToken(token), principal: email ?? credential.principal };
  },
};
