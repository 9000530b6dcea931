// RunPod's URL templates: `$RUNPOD_POD_ID` → worker id, `$ID` → job (or, in the take URL, worker) id.
// rp-py appends `&k=v` blindly; we add `?` when the template has no query yet (a documented deviation).
// Ids are percent-encoded into one path segment (rp-py pastes them raw): an id holding `/`, `../`,
// `?`, `#`, `%`, spaces or non-ASCII must reach the URL of its own job, never another one.
import { runpodError } from './errors';

/** Plain, literal replacement of every occurrence (no `$&` patterns from ids). */
function replaceLiteral(text: string, token: string, value: string): string {
  return text.split(token).join(value);
}

/**
 * False for the ids no URL can carry: `''`, and `.` and `..`, which URL parsers fold away as dot
 * segments however they are escaped (`%2e` counts as a dot), so the post would land elsewhere.
 */
export function isAddressableId(id: string): boolean {
  return id !== '' && id !== '.' && id !== '..';
}

/** An id as one path segment (encodeURIComponent: real ids, `[A-Za-z0-9-]`, come out unchanged). */
export function idSegment(id: string, what: 'job' | 'worker'): string {
  if (!isAddressableId(id))
    throw runpodError('INTERNAL', `the ${what} id ${JSON.stringify(id)} cannot be put into a RunPod URL`, {
      details: { [`${what}Id`]: id },
    });
  return encodeURIComponent(id);
}

/** The job-take template with both placeholders filled (rp-py fills only `$ID` here). */
export function takeUrl(template: string, workerId: string): string {
  const worker = idSegment(workerId, 'worker');
  return replaceLiteral(replaceLiteral(template, '$RUNPOD_POD_ID', worker), '$ID', worker);
}

/** A job-done / job-stream template for one job. */
export function jobUrl(template: string, workerId: string, jobId: string): string {
  return replaceLiteral(replaceLiteral(template, '$RUNPOD_POD_ID', idSegment(workerId, 'worker')), '$ID', idSegment(jobId, 'job'));
}

export function pingUrl(template: string, workerId: string): string {
  return replaceLiteral(template, '$RUNPOD_POD_ID', idSegment(workerId, 'worker'));
}

/** Appends query parameters, keeping an existing query. Values are URL-encoded. */
export function withQuery(url: string, params: Record<string, string | number>): string {
  const pairs = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  if (pairs.length === 0) return url;
  const sep = url.includes('?') ? (url.endsWith('?') || url.endsWith('&') ? '' : '&') : '?';
  return `${url}${sep}${pairs.join('&')}`;
}

/** `/job-take/` → `/job-take-batch/`, query kept. */
export function batchTakeUrl(takeUrlFilled: string): string {
  return takeUrlFilled.replace('/job-take/', '/job-take-batch/');
}

/** `/job-take/` → `/job-stop/`; undefined (stop channel disabled) when the take URL lacks `/job-take/`. */
export function stopUrl(takeUrlFilled: string): string | undefined {
  return takeUrlFilled.includes('/job-take/') ? takeUrlFilled.replace('/job-take/', '/job-stop/') : undefined;
}
