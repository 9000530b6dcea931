export { ComfySupervisor, type ComfySettings } from './supervisor';
export { ComfyClient } from './client';
export { videoOutputs, type ComfyOutputFile } from './outputs';
