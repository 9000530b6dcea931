// Public API of the RunPod worker runtime. Generic: it knows nothing of ComfyUI or SteadyDancer.
export { runWorker, selectMode, type RunWorkerOptions } from './run-worker';
export { parseArgs, type WorkerArgs } from './args';
export type { Handler, JobContext, RunpodJob, WorkerMode, ResultBody, RuntimeSettings, RuntimeSettingNames } from './types';
export type { RuntimeTiming } from './timing';
export { DEFAULT_TIMING } from './timing';
export { startLocalApi, type HandlerHealth, type LocalApi, type LocalApiOptions } from './local-api';
export type { StatusObject, LocalStatus } from './local-jobs';
export { createWebhookGuard, type WebhookGuard, type WebhookGuardOptions } from './webhook-guard';
