import { describe, expect, it } from '@jest/globals';
import { inferenceUpdate, stageUpdate } from '../../src/job/progress';

describe('inferenceUpdate', () => {
  it('names the stage after the node that runs, on the span between queued and uploading', () => {
    expect(inferenceUpdate({ percent: 0 })).toEqual({ stage: 'preprocessing', percent: stageUpdate('queued').percent });
    expect(inferenceUpdate({ percent: 20, nodeType: 'PoseDetectionOneToAllAnimation' })).toMatchObject({ stage: 'preprocessing' });
    expect(inferenceUpdate({ percent: 50, nodeType: 'WanVideoSampler', step: 2, steps: 4 })).toEqual({
      stage: 'sampling',
      percent: 51,
      step: 2,
      steps: 4,
    });
    expect(inferenceUpdate({ percent: 80, nodeType: 'WanVideoDecode' })).toMatchObject({ stage: 'decoding' });
    expect(inferenceUpdate({ percent: 90, nodeType: 'VHS_VideoCombine' })).toMatchObject({ stage: 'encoding' });
  });

  it("calls ComfyUI's final node-less 100 % (the MP4 is written) encoding, not preprocessing, just below uploading", () => {
    const last = inferenceUpdate({ percent: 100 });
    expect(last).toEqual({ stage: 'encoding', percent: 92 });
    expect(last.percent).toBeLessThan(stageUpdate('uploading').percent);
  });
});
