// Shared test data: the recorded object_info and a valid set of job values.
import recorded from '../../workflows/object_info.json' with { type: 'json' };
import type { ObjectInfo } from './prompt-schema';
import type { WorkflowParams } from '../../src/workflow/build';
import { VARIANTS, type VariantName } from '../../src/workflow/variants';

export const OBJECT_INFO = recorded.object_info as unknown as ObjectInfo;
export const RECORDED_WITH = recorded.recorded_with;

export function paramsFor(variant: VariantName, overrides: Partial<WorkflowParams> = {}): WorkflowParams {
  const d = VARIANTS[variant].defaults;
  return {
    variant,
    width: d.width,
    height: d.height,
    num_frames: d.num_frames,
    fps: d.fps,
    seed: 1234,
    prompt: d.prompt,
    negative_prompt: d.negative_prompt,
    steps: d.steps,
    cfg: d.cfg,
    shift: d.shift,
    crf: d.crf,
    referenceImageName: 'job-1/reference.png',
    poseVideoName: 'job-1/pose.mp4',
    filenamePrefix: 'sd_job-1/steadydancer',
    ...overrides,
  };
}
