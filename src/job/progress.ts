// Maps pipeline stages and ComfyUI node progress onto one percent scale for RunPod's progress_update.
import type { ComfyProgress } from './ports';

export type Stage = 'inputs' | 'starting' | 'queued' | 'preprocessing' | 'sampling' | 'decoding' | 'encoding' | 'uploading';

export interface ProgressUpdate {
  stage: Stage;
  percent: number;
  step?: number;
  steps?: number;
}

/** Fixed points before and after inference; ComfyUI's own percent fills the span between. */
const INFERENCE_START = 10;
const INFERENCE_END = 92;

export function stageUpdate(stage: 'inputs' | 'starting' | 'queued' | 'uploading'): ProgressUpdate {
  const percent = { inputs: 2, starting: 6, queued: INFERENCE_START, uploading: 95 }[stage];
  return { stage, percent };
}

function stageOfNode(nodeType: string | undefined, percent: number): Stage {
  // node-less: before the first node runs, or ComfyUI's final 100 % (its last node has written the MP4)
  if (!nodeType) return percent >= 100 ? 'encoding' : 'preprocessing';
  if (/Sampler/i.test(nodeType)) return 'sampling';
  if (/Decode/i.test(nodeType)) return 'decoding';
  if (/VideoCombine|SaveVideo/i.test(nodeType)) return 'encoding';
  return 'preprocessing';
}

export function inferenceUpdate(p: ComfyProgress): ProgressUpdate {
  const within = Math.min(100, Math.max(0, p.percent));
  const update: ProgressUpdate = {
    stage: stageOfNode(p.nodeType, within),
    percent: Math.round(INFERENCE_START + ((INFERENCE_END - INFERENCE_START) * within) / 100),
  };
  if (p.step !== undefined && p.steps !== undefined) {
    update.step = p.step;
    update.steps = p.steps;
  }
  return update;
}
