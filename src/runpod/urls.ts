// RunPod's URL templates: `$RUNPOD_POD_ID` → worker id, `$ID` → job (or, in the take URL, worker) id.
// rp-py appends `&k=v` blindly; we add `?` when the template has no query yet (a documented deviation).

/** Plain, literal replacement of every occurrence (no `$&` patterns from ids). */
function replaceLiteral(text: string, token: string, value: string): string {
  return text.split(token).join(value);
}

/** The job-take template with both placeholders filled (rp-py fills only `$ID` here). */
export function takeUrl(template: string, workerId: string): string {
  return replaceLiteral(replaceLiteral(template, '$RUNPOD_POD_ID', workerId), '$ID', workerId);
}

/** A job-done / job-stream template for one job. */
export function jobUrl(template: string, workerId: string, jobId: string): string {
  return replaceLiteral(replaceLiteral(template, '$RUNPOD_POD_ID', workerId), '$ID', jobId);
}

export function pingUrl(template: string, workerId: string): string {
  return replaceLiteral(template, '$RUNPOD_POD_ID', workerId);
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
