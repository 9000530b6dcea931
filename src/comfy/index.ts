export { ComfySupervisor, type ComfySupervisorOptions } from './supervisor';
export { ComfyClient, withJobFolder, type ComfyClientOptions, type RunPromptOptions, type RunPromptResult, type CleanupTarget } from './client';
export type { ComfyEndpoint } from './endpoint';
export type { ComfyOutputFile, ComfyFileType } from './outputs';
export { videoOutputs, listOutputFiles } from './outputs';
export type { ComfyProgress } from './progress';
export { comfyArgs, comfyLayout } from './args';
