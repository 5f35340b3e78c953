// The GCE / Cloud Run metadata server (google-wire.md §1).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { googleErrorPage, send } from './http.ts';
import type { EmulatorState } from './state.ts';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
// GKE's answer when the Google service account lacks the workloadIdentityUser binding for the pod's KSA (§14.1).
const WORKLOAD_IDENTITY_DENIED =
  "Unable to generate access token; IAM returned 403 Forbidden: Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).\nThis error could be caused by a missing IAM policy binding on the target IAM service account.\nFor more information, refer to the Workload Identity documentation:\n\thttps://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#authenticating_to\n";
const GCE_FLAVOR = { 'metadata-flavor': 'Google', server: 'Metadata Server for VM', 'x-xss-protection': '0', 'x-frame-options': 'SAMEORIGIN' };

const GKE_FLAVOR = { 'metadata-flavor': 'Google', server: 'GKE Metadata Server' };

export function metadataHandler(state: EmulatorState) {
  let started = false;
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const gke = state.scenario.metadata.gke;
    // GKE's metadata server takes a few seconds to accept requests in a new pod (§14.1).
    if (gke?.startupDelayMs && !started) await new Promise((r) => setTimeout(r, gke.startupDelayMs));
    started = true;
    const FLAVOR = gke ? GKE_FLAVOR : GCE_FLAVOR;
    const text = (status: number, body: string) => send(res, status, body, { ...FLAVOR, 'content-type': 'application/text' });
    const json = (body: unknown) => send(res, 200, JSON.stringify(body), { ...FLAVOR, 'content-type': 'application/json' });
    // GKE's token answers have been seen without Metadata-Flavor (§14.1).
    const tokenHeaders = gke && gke.tokenWithoutFlavor !== false ? { server: 'GKE Metadata Server' } : FLAVOR;
    const notFound = () =>
      send(res, 404, googleErrorPage(404, 'Not Found', `The requested URL <code>${escapeHtml(url.pathname)}</code> was not found on this server.`), {
        ...FLAVOR,
        'content-type': 'text/html; charset=UTF-8',
      });

    if (req.headers['x-forwarded-for'] !== undefined) {
      return send(res, 403, 'Forbidden', { ...FLAVOR, 'content-type': 'text/html; charset=UTF-8' });
    }
    if (req.headers['metadata-flavor'] !== 'Google') {
      return send(
        res,
        403,
        googleErrorPage(403, 'Forbidden', `Your client does not have permission to get URL <code>${escapeHtml(url.pathname)}</code> from this server. Missing Metadata-Flavor:Google header.`),
        { ...FLAVOR, 'content-type': 'text/html; charset=UTF-8' },
      );
    }
    if (req.method !== 'GET') return notFound();
    if (url.pathname === '/') return text(200, 'computeMetadata/\n');

    const prefix = '/computeMetadata/v1/';
    if (!url.pathname.startsWith(prefix) && url.pathname !== '/computeMetadata/v1') return notFound();
    const path = url.pathname.slice(prefix.length).replace(/\/$/, '');
    const { project, metadata } = state.scenario;
    const sa = metadata.serviceAccount ? state.serviceAccounts.get(metadata.serviceAccount) : undefined;
    const zone = metadata.zone ?? 'us-central1-c';
    const instanceId = metadata.instanceId ?? '4570452845155348778';
    const instanceName = metadata.instanceName ?? 'emulated-instance';
    // The instance's access scopes (gcloud compute instances create --scopes): cloud-platform unless the scenario says.
    const instanceScopes = state.scenario.metadata.scopes ?? [CLOUD_PLATFORM];
    const accountInfo = sa ? { aliases: ['default'], email: sa.spec.email, scopes: instanceScopes } : undefined;

    if (path === 'project/project-id') return text(200, project.id);
    if (path === 'project/numeric-project-id') return text(200, project.number);
    if (path === 'universe/universe-domain') {
      return metadata.universeDomain === null ? notFound() : text(200, metadata.universeDomain ?? 'googleapis.com');
    }
    if (path === 'instance/zone') return text(200, `projects/${project.number}/zones/${zone}`);
    if (path === 'instance/region') return text(200, `projects/${project.number}/regions/${zone.replace(/-[a-z]$/, '')}`);
    if (path === 'instance/id') return text(200, instanceId);
    if (path === 'instance/name') return text(200, instanceName);
    if (path === 'instance/hostname') return text(200, `${instanceName}.${zone}.c.${project.id}.internal`);
    if (path === 'instance' || path === '' || path === 'project') {
      const instance = {
        id: Number(instanceId),
        name: instanceName,
        zone: `projects/${project.number}/zones/${zone}`,
        serviceAccounts: accountInfo ? { default: accountInfo, [accountInfo.email]: accountInfo } : {},
      };
      const projectTree = { projectId: project.id, numericProjectId: Number(project.number) };
      if (url.searchParams.get('recursive') === 'true') {
        return json(path === 'instance' ? instance : path === 'project' ? projectTree : { instance, project: projectTree });
      }
      return text(200, path === 'instance' ? 'attributes/\nhostname\nid\nname\nservice-accounts/\nzone\n' : path === 'project' ? 'numeric-project-id\nproject-id\n' : 'instance/\nproject/\nuniverse/\n');
    }

    const account = /^instance\/service-accounts(?:\/([^/]+)(?:\/(.*))?)?$/.exec(path);
    if (!account) return notFound();
    const [, alias, leaf] = account;
    if (alias === undefined) {
      if (url.searchParams.get('recursive') === 'true') return json(accountInfo ? { default: accountInfo, [accountInfo.email]: accountInfo } : {});
      return text(200, sa ? `default/\n${sa.spec.email}/\n` : '');
    }
    if (!sa || (alias !== 'default' && alias !== sa.spec.email)) {
      if (leaf === 'identity' || leaf === 'token') {
        return send(res, 404, JSON.stringify({ error: 'invalid_request', error_description: 'Service account not enabled on this instance' }), {
          ...FLAVOR,
          'content-type': 'application/json',
        });
      }
      return notFound();
    }
    switch (leaf ?? '') {
      case '':
        return url.searchParams.get('recursive') === 'true' ? json(accountInfo) : text(200, 'aliases\nemail\nidentity\nscopes\ntoken\n');
      case 'email':
        return text(200, sa.spec.email);
      case 'aliases':
        return text(200, 'default');
      case 'scopes':
        return text(200, instanceScopes.join('\n'));
      case 'token': {
        if (gke?.workloadIdentityUserMissing) return send(res, 403, WORKLOAD_IDENTITY_DENIED, { server: 'GKE Metadata Server', 'content-type': 'text/plain; charset=utf-8' });
        // A scopes parameter narrows what the token may do (never widens it past the instance's).
        const scopes = url.searchParams.get('scopes')?.split(',').filter((s) => instanceScopes.includes(s)) ?? instanceScopes;
        const { token, expiresIn } = state.issueAccessToken({ member: `serviceAccount:${sa.spec.email}`, email: sa.spec.email, scopes });
        return send(res, 200, JSON.stringify({ access_token: token, expires_in: expiresIn - 1, token_type: 'Bearer' }), { ...tokenHeaders, 'content-type': 'application/json' });
      }
      case 'identity': {
        const audience = url.searchParams.get('audience');
        if (!audience) return text(400, 'non-empty audience parameter required');
        if (gke?.formatFullRejected && url.searchParams.get('format') === 'full') return text(400, 'invalid format parameter: full');
        // The ID-token wording is by analogy with the access-token one (unconfirmed, §14.1).
        if (gke?.workloadIdentityUserMissing) return send(res, 403, WORKLOAD_IDENTITY_DENIED.replace('access token', 'ID token').replace('getAccessToken', 'getOpenIdToken'), { server: 'GKE Metadata Server', 'content-type': 'text/plain; charset=utf-8' });
        // GKE mints through IAM for the Google service account: no compute_engine block (§14.1).
        const full = url.searchParams.get('format') === 'full' && !gke;
        const withEmail = full || Boolean(gke && url.searchParams.get('format') === 'full') || state.switches.emailInStandardMetadataToken;
        const claims: Record<string, unknown> = {
          aud: audience,
          azp: sa.uniqueId,
          ...(withEmail ? { email: sa.spec.email, email_verified: true } : {}),
          sub: sa.uniqueId,
        };
        if (full) {
          claims.google = {
            compute_engine: {
              instance_creation_timestamp: state.now() - 86_400,
              instance_id: instanceId,
              instance_name: instanceName,
              project_id: project.id,
              project_number: Number(project.number),
              zone,
              ...(url.searchParams.get('licenses') === 'TRUE' ? { license_id: ['1000010'] } : {}),
            },
          };
        }
        return send(res, 200, state.signIdToken(claims), { ...tokenHeaders, 'content-type': 'application/text' });
      }
      default:
        return notFound();
    }
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
