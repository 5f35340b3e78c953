// Cloud Resource Manager's projects.get (v1): the one call Google's Python library makes while it loads an
// external-account file (get_project_id: the project id behind the audience's project number). Without an answer, a
// Python client that loads one through the emulator's proxy fails before it mints anything.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiError, apiJson } from './http.ts';
import { authenticate } from './iam.ts';
import type { EmulatorState } from './state.ts';

const SERVICE = 'cloudresourcemanager.googleapis.com';

/** GET /v1/projects/{projectId or projectNumber}: the path shape IAM Credentials' /v1/projects/-/serviceAccounts/… never has. */
export const isResourceManagerPath = (path: string) => /^\/v1\/projects\/[^/:]+$/.test(path);

export function resourceManagerEndpoint(state: EmulatorState, req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (req.method !== 'GET') return apiError(res, 405, 'INVALID_ARGUMENT', 'Method not allowed.');
  const caller = authenticate(state, req.headers.authorization, 'google.cloudresourcemanager.v1.Projects.GetProject', SERVICE);
  if ('error' in caller) return apiError(res, 401, 'UNAUTHENTICATED', caller.error, [caller.detail]);
  const wanted = decodeURIComponent(url.pathname.slice('/v1/projects/'.length));
  const { id, number } = state.scenario.project;
  // Projects the caller cannot see and projects that do not exist get the same answer, as from Google.
  if (wanted !== id && wanted !== number) return apiError(res, 403, 'PERMISSION_DENIED', 'The caller does not have permission');
  apiJson(res, { projectNumber: number, projectId: id, lifecycleState: 'ACTIVE', name: id, createTime: '2024-01-01T00:00:00.000Z' });
}
