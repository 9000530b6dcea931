// Public API of the RunPod worker runtime. Generic: it knows nothing of ComfyUI or SteadyDancer.
export { runWorker, selectMode, type RunWorkerOptions } from './run-worker';
export type { Handler, JobContext, RunpodJob, WorkerMode, ResultBody } from './types';
export type { RuntimeTiming } from './timing';
export { DEFAULT_TIMING } from './timing';
export { startLocalApi, type LocalApi, type LocalApiOptions } from './local-api';
export type { StatusObject, LocalStatus } from './local-jobs';
