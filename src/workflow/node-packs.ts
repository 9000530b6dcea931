// The custom-node packs the templates need (repo and commit from workflows/pins.json, which the image
// installs) and the node classes each provides, so a ComfyUI without them is told what to install.
import pins from '../../workflows/pins.json' with { type: 'json' };
import type { NodePack } from '../comfy/node-packs';

/**
 * Pack name (as in pins.json) → its node classes the templates use. Classes not listed are ComfyUI's own.
 * test/workflow/node-packs.test.ts checks it against workflows/object_info.json (each class's python_module).
 */
const PACK_CLASSES: Readonly<Record<string, readonly string[]>> = {
  'ComfyUI-WanVideoWrapper': [
    'WanVideoAddSteadyDancerEmbeds',
    'WanVideoBlockSwap',
    'WanVideoClipVisionEncode',
    'WanVideoContextOptions',
    'WanVideoDecode',
    'WanVideoEncode',
    'WanVideoImageToVideoEncode',
    'WanVideoLoraSelect',
    'WanVideoModelLoader',
    'WanVideoSampler',
    'WanVideoSetLoRAs',
    'WanVideoTextEncodeCached',
    'WanVideoTorchCompileSettings',
    'WanVideoVAELoader',
  ],
  'ComfyUI-VideoHelperSuite': ['VHS_LoadVideo', 'VHS_VideoCombine'],
  'ComfyUI-KJNodes': ['GetImageRangeFromBatch', 'GetImageSizeAndCount', 'ImageResizeKJv2'],
  'ComfyUI-WanAnimatePreprocess': ['OnnxDetectionModelLoader', 'PoseDetectionOneToAllAnimation'],
};

/** Every pinned custom-node pack with the classes the templates take from it. */
export const NODE_PACKS: readonly NodePack[] = pins.custom_nodes.map((p) => ({
  name: p.name,
  repo: p.repo,
  commit: p.commit,
  classes: PACK_CLASSES[p.name] ?? [],
}));
