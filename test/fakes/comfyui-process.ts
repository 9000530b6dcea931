// A stand-in ComfyUI process for supervisor tests, bundled by the test into <dir>/main.py and started as
// `node main.py <ComfyUI's flags>` in <dir> — exactly how the supervisor starts `python main.py`.
// Behaviour comes from <dir>/standin.json: boot delay, node classes, failing at boot with an import error,
// ignoring SIGTERM. POST /fake/exit {"code": n} makes it die at once (a crash).
import { readFileSync, writeFileSync } from 'node:fs';
import { FakeComfyUI } from './comfyui';

interface StandinBehaviour {
  bootDelayMs?: number;
  nodeClasses?: string[];
  /** Print these lines and exit with code 1 before listening (a broken custom node, a bad flag). */
  failAtBoot?: string[];
  ignoreSigterm?: boolean;
  /** How prompts run (default: succeed). */
  outcome?: 'success' | 'wait-for-interrupt';
}

const behaviour = JSON.parse(readFileSync('standin.json', 'utf8')) as StandinBehaviour;
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
// record the command line for the test to check
writeFileSync('argv.json', JSON.stringify(args));

console.log('Checkpoint files will always be loaded safely.');
console.error('Total VRAM 0 MB, total RAM 24104 MB');

async function main(): Promise<void> {
  if (behaviour.failAtBoot) {
    for (const l of behaviour.failAtBoot) console.error(l);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, behaviour.bootDelayMs ?? 0));
  const fake = await FakeComfyUI.start({
    dirs: { input: flag('--input-directory')!, output: flag('--output-directory')!, temp: flag('--temp-directory')! },
    port: Number(flag('--port')),
    ...(behaviour.nodeClasses ? { nodeClasses: behaviour.nodeClasses } : {}),
  });
  fake.behaviour = { outcome: behaviour.outcome ?? 'success' };
  fake.onEvent((type) => {
    if (type === 'execution_start') console.error('got prompt');
  });
  // a side door the real server does not have: die on command
  const server = (fake as unknown as { server: import('node:http').Server }).server;
  server.prependListener('request', (req, _res) => {
    if (req.url === '/fake/exit') {
      console.error('Segmentation fault (core dumped)');
      process.exit(139);
    }
  });
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
