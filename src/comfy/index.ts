export { ComfySupervisor, type ComfySettings, type ComfySettingNames } from './supervisor';
export { ComfyClient } from './client';
export { comfyError } from './errors';
export { videoOutputs, type ComfyOutputFile } from './outputs';
export type { ComfyProgress } from './progress';
