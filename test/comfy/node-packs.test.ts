import { describe, expect, it } from '@jest/globals';
import { describeMissingClasses, type NodePack } from '../../src/comfy/node-packs';

const PACKS: NodePack[] = [
  {
    name: 'ComfyUI-KJNodes',
    repo: 'https://github.com/kijai/ComfyUI-KJNodes',
    commit: 'f37df472dfb325f1f72c90e2df56e72f40f850f0',
    classes: ['ImageResizeKJv2', 'GetImageSizeAndCount'],
  },
  {
    name: 'ComfyUI-VideoHelperSuite',
    repo: 'https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite',
    commit: '8550981384301e9bc5bfea83e5c2c75258102593',
    classes: ['VHS_LoadVideo', 'VHS_VideoCombine'],
  },
];

describe('describeMissingClasses', () => {
  it('groups the missing classes by pack, with the commands for the ComfyUI the worker starts', () => {
    const r = describeMissingClasses(['VHS_VideoCombine', 'ImageResizeKJv2', 'VHS_LoadVideo'], PACKS, {
      comfyDir: '/comfyui/',
      python: '/opt/venv/bin/python',
    });
    expect(r.packs).toEqual([
      { name: 'ComfyUI-VideoHelperSuite', repo: PACKS[1]!.repo, commit: PACKS[1]!.commit, classes: ['VHS_VideoCombine', 'VHS_LoadVideo'] },
      { name: 'ComfyUI-KJNodes', repo: PACKS[0]!.repo, commit: PACKS[0]!.commit, classes: ['ImageResizeKJv2'] },
    ]);
    expect(r.unknown).toEqual([]);
    expect(r.message.split('\n')).toEqual([
      expect.stringContaining('ComfyUI started without the node classes VHS_VideoCombine, ImageResizeKJv2, VHS_LoadVideo'),
      'Install each pack at its pinned commit, then restart ComfyUI:',
      `  ComfyUI-VideoHelperSuite (VHS_VideoCombine, VHS_LoadVideo): cd /comfyui/custom_nodes && git clone ${PACKS[1]!.repo} ComfyUI-VideoHelperSuite && git -C ComfyUI-VideoHelperSuite checkout ${PACKS[1]!.commit} && /opt/venv/bin/python -m pip install -r ComfyUI-VideoHelperSuite/requirements.txt`,
      `  ComfyUI-KJNodes (ImageResizeKJv2): cd /comfyui/custom_nodes && git clone ${PACKS[0]!.repo} ComfyUI-KJNodes && git -C ComfyUI-KJNodes checkout ${PACKS[0]!.commit} && /opt/venv/bin/python -m pip install -r ComfyUI-KJNodes/requirements.txt`,
    ]);
  });

  it('points an external ComfyUI at its own folder, and says so for a class no pack provides', () => {
    const r = describeMissingClasses(['GetImageSizeAndCount', 'CLIPVisionLoader'], PACKS, {});
    expect(r.unknown).toEqual(['CLIPVisionLoader']);
    expect(r.message).toContain('cd <ComfyUI folder>/custom_nodes && git clone');
    expect(r.message).toContain('python -m pip install -r ComfyUI-KJNodes/requirements.txt');
    expect(r.message).toContain('  CLIPVisionLoader: no listed custom node pack provides it; a core node this ComfyUI lacks?');
  });
});
