// The class → pack table behind the "install this pack" advice agrees with what ComfyUI itself reported
// (workflows/object_info.json: each class's python_module) and with the pins the image installs.
import { describe, expect, it } from '@jest/globals';
import recorded from '../../workflows/object_info.json' with { type: 'json' };
import pins from '../../workflows/pins.json' with { type: 'json' };
import { NODE_PACKS } from '../../src/workflow/node-packs';
import { allRequiredNodeClasses } from '../../src/workflow/variants';

const objectInfo = recorded.object_info as Record<string, { python_module: string }>;

/** The pack ComfyUI loaded a class from ("custom_nodes.<pack>"), or undefined for ComfyUI's own nodes. */
function recordedPack(cls: string): string | undefined {
  const module = objectInfo[cls]?.python_module;
  if (module === undefined) throw new Error(`${cls} is not in workflows/object_info.json: re-record it`);
  return /^custom_nodes\.([^.]+)/.exec(module)?.[1];
}

describe('NODE_PACKS', () => {
  it('names, for every class the templates use, the pack ComfyUI loaded it from (none for core classes)', () => {
    const classes = allRequiredNodeClasses();
    expect(classes.length).toBeGreaterThan(10);
    for (const cls of classes) {
      const listed = NODE_PACKS.filter((p) => p.classes.includes(cls)).map((p) => p.name);
      const expected = recordedPack(cls);
      expect({ cls, packs: listed }).toEqual({ cls, packs: expected === undefined ? [] : [expected] });
    }
  });

  it('lists no class the templates do not use, and every pinned pack with its repo and commit', () => {
    const used = new Set(allRequiredNodeClasses());
    expect(NODE_PACKS.flatMap((p) => p.classes).filter((c) => !used.has(c))).toEqual([]);
    expect(NODE_PACKS.map(({ name, repo, commit }) => ({ name, repo, commit }))).toEqual(
      pins.custom_nodes.map(({ name, repo, commit }) => ({ name, repo, commit })),
    );
    for (const p of NODE_PACKS) expect(p.classes.length).toBeGreaterThan(0);
  });
});
