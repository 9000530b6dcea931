// A stand-in ComfyUI process for supervisor tests, bundled by the test into <dir>/main.py and started as
// `node main.py <ComfyUI's flags>` in <dir> — exactly how the supervisor starts `python main.py`.
// Behaviour comes from <dir>/standin.json: boot delay, node classes, failing at boot with an import error,
// ignoring SIGTERM. POST /fake/exit {"code": n} makes it die at once (a crash). Every request is appended
// to <dir>/requests.log ("METHOD /path"), so a test can see what the worker asked of it.
// With `steadydancer` set it plays the SteadyDancer graph: it knows every node class the templates use,
// picks each prompt's fate from a marker in the positive prompt (node WanVideoTextEncodeCached), and
// writes a real H.264 MP4 shaped like the job asked (see renderSteadyDancer).
import { execFile } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { allRequiredNodeClasses } from '../../src/workflow';
import { DEFAULT_NODE_CLASSES, FakeComfyUI, type FakeRunBehaviour, type Graph } from './comfyui';

interface StandinBehaviour {
  bootDelayMs?: number;
  nodeClasses?: string[];
  /** Print these lines and exit with code 1 before listening (a broken custom node, a bad flag). */
  failAtBoot?: string[];
  ignoreSigterm?: boolean;
  /** How prompts run (default: succeed). */
  outcome?: 'success' | 'wait-for-interrupt';
  steadydancer?: {
    /** ffmpeg binary that renders the output video. */
    ffmpegPath: string;
    /** Copy this file as the output instead of rendering one (a bench: zero inference time). */
    outputVideo?: string;
    /** How long `[fake:slow]` holds the sampler. Default 2000 ms. */
    slowMs?: number;
  };
}

const behaviour = JSON.parse(readFileSync('standin.json', 'utf8')) as StandinBehaviour;
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
// record the command line and pid for the test to check
writeFileSync('argv.json', JSON.stringify(args));
writeFileSync('pid', String(process.pid));

console.log('Checkpoint files will always be loaded safely.');
console.error('Total VRAM 0 MB, total RAM 24104 MB');

const run = promisify(execFile);

function nodesOf(graph: Graph, classType: string): [string, Graph[string]][] {
  return Object.entries(graph).filter(([, n]) => n.class_type === classType);
}

/**
 * A job chooses its prompt's fate with a marker in its prompt text: `[fake:oom]` OOM at the sampler,
 * `[fake:error]` an exception there, `[fake:crash]` the process dies mid-sampler, `[fake:hang]` the
 * sampler waits for /interrupt, `[fake:slow]` the sampler holds for slowMs. No marker: success.
 */
function markerBehaviour(graph: Graph, slowMs: number): FakeRunBehaviour | undefined {
  const text = String(nodesOf(graph, 'WanVideoTextEncodeCached')[0]?.[1].inputs.positive_prompt ?? '');
  const marker = /\[fake:(\w+)\]/.exec(text)?.[1];
  switch (marker) {
    case 'oom':
      return { outcome: 'oom' };
    case 'error':
      return { outcome: 'error' };
    case 'hang':
      return { outcome: 'wait-for-interrupt' };
    case 'slow':
      return { outcome: 'success', hold: () => new Promise((r) => setTimeout(r, slowMs)) };
    case 'crash':
      return {
        outcome: 'success',
        hold: () => {
          console.error('!!! Exception during processing !!! CUDA error: an illegal memory access was encountered');
          console.error('Segmentation fault (core dumped)');
          process.exit(139);
        },
      };
    default:
      return undefined;
  }
}

/**
 * What VHS_LoadVideo → ImageResizeKJv2 (crop) → … → VHS_VideoCombine would write: the uploaded pose
 * video at force_rate, capped at frame_load_cap frames, cropped to the resize node's size, written at
 * the combine node's frame_rate as H.264 yuv420p.
 */
async function renderSteadyDancer(graph: Graph, nodeId: string, outPath: string, ffmpegPath: string, inputDir: string): Promise<void> {
  const [loadId, load] = nodesOf(graph, 'VHS_LoadVideo')[0] ?? [];
  if (!loadId || !load) throw new Error('stand-in: the graph has no VHS_LoadVideo node');
  const resize = nodesOf(graph, 'ImageResizeKJv2').find(([, n]) => Array.isArray(n.inputs.image) && n.inputs.image[0] === loadId)?.[1];
  if (!resize) throw new Error(`stand-in: no ImageResizeKJv2 node takes VHS_LoadVideo ${loadId}`);
  const width = Number(resize.inputs.width);
  const height = Number(resize.inputs.height);
  const cap = Number(load.inputs.frame_load_cap ?? 0);
  const forceRate = Number(load.inputs.force_rate ?? 0);
  const combine = graph[nodeId]!.inputs;
  const fps = Number(combine.frame_rate ?? 16);
  const filters = [
    ...(forceRate > 0 ? [`fps=${forceRate}`] : []),
    `scale=${width}:${height}:force_original_aspect_ratio=increase`,
    `crop=${width}:${height}`,
    // frames are images by now: VHS writes them at frame_rate whatever rate they were loaded at
    `setpts=N/(${fps}*TB)`,
  ];
  await run(ffmpegPath, [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-i',
    path.join(inputDir, String(load.inputs.video)),
    '-vf',
    filters.join(','),
    ...(cap > 0 ? ['-frames:v', String(cap)] : []),
    '-r',
    String(fps),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-crf',
    String(combine.crf ?? 19),
    '-pix_fmt',
    'yuv420p',
    '-movflags',
    '+faststart',
    outPath,
  ]);
}

async function main(): Promise<void> {
  if (behaviour.failAtBoot) {
    for (const l of behaviour.failAtBoot) console.error(l);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, behaviour.bootDelayMs ?? 0));
  const inputDir = flag('--input-directory')!;
  const sd = behaviour.steadydancer;
  const nodeClasses = behaviour.nodeClasses ?? (sd ? [...DEFAULT_NODE_CLASSES, ...allRequiredNodeClasses()] : undefined);
  const fake = await FakeComfyUI.start({
    dirs: { input: inputDir, output: flag('--output-directory')!, temp: flag('--temp-directory')! },
    port: Number(flag('--port')),
    ...(nodeClasses ? { nodeClasses } : {}),
    ...(sd
      ? {
          behaviourFor: (graph: Graph) => markerBehaviour(graph, sd.slowMs ?? 2000),
          renderVideo: async (graph: Graph, nodeId: string, outPath: string) => {
            if (sd.outputVideo) copyFileSync(sd.outputVideo, outPath);
            else await renderSteadyDancer(graph, nodeId, outPath, sd.ffmpegPath, inputDir);
          },
        }
      : {}),
  });
  fake.behaviour = { outcome: behaviour.outcome ?? 'success' };
  fake.onEvent((type) => {
    if (type === 'execution_start') console.error('got prompt');
  });
  // a side door the real server does not have: die on command
  const server = (fake as unknown as { server: import('node:http').Server }).server;
  server.prependListener('request', (req, _res) => {
    appendFileSync('requests.log', `${req.method} ${req.url}\n`);
    if (req.url === '/fake/exit') {
      console.error('Segmentation fault (core dumped)');
      process.exit(139);
    }
  });
  // A test double must not outlive a worker that was killed outright (real ComfyUI would; the tests
  // would leak it): once the parent is gone, exit.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 500).unref();
  process.on('SIGTERM', () => {
    if (behaviour.ignoreSigterm) {
      console.error('ignoring SIGTERM');
      return;
    }
    console.error('Stopped server');
    process.exit(0);
  });
  console.error('Starting server\n');
  console.error(`To see the GUI go to: http://127.0.0.1:${fake.port}`);
}

void main();
