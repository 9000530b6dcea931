// The rp-py command-line flags (argparse `parse_known_args`: unknown flags are ignored).
import { runpodError } from './errors';

export interface WorkerArgs {
  serveApi: boolean;
  apiHost: string;
  apiPort: number;
  /** --rp_api_concurrency; undefined = the config's concurrency. */
  apiConcurrency: number | undefined;
  /** Raw JSON text of --test_input, if given. */
  testInput: string | undefined;
  logLevel: string | undefined;
  debugger: boolean;
}

const VALUE_FLAGS = new Set(['--rp_api_host', '--rp_api_port', '--rp_api_concurrency', '--test_input', '--rp_log_level']);
const BOOL_FLAGS = new Set(['--rp_serve_api', '--rp_debugger']);

function wholeNumber(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw runpodError('CONFIG_INVALID', `${flag} expects a whole number from ${min} to ${max}, got "${v}"`, { details: { flag } });
  return n;
}

/** Parses the arguments after the script name (`process.argv.slice(2)`); `--flag=value` works too. */
export function parseArgs(argv: readonly string[]): WorkerArgs {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (BOOL_FLAGS.has(name)) bools.add(name);
    else if (VALUE_FLAGS.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw runpodError('CONFIG_INVALID', `${name} needs a value`, { details: { flag: name } });
      values.set(name, value);
    }
  }
  const port = values.get('--rp_api_port');
  const concurrency = values.get('--rp_api_concurrency');
  return {
    serveApi: bools.has('--rp_serve_api'),
    apiHost: values.get('--rp_api_host') ?? 'localhost',
    apiPort: port === undefined ? 8000 : wholeNumber('--rp_api_port', port, 0, 65535),
    apiConcurrency: concurrency === undefined ? undefined : wholeNumber('--rp_api_concurrency', concurrency, 1, 64),
    testInput: values.get('--test_input'),
    logLevel: values.get('--rp_log_level'),
    debugger: bools.has('--rp_debugger'),
  };
}
