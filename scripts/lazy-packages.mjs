// An esbuild plugin that makes chosen CommonJS packages load on first use instead of at start-up.
// Our sources import them as usual; in the bundle each import gets a stand-in that has the package's
// export names (read here, at build time) as getters, and the first one read loads the real package.
// Why: the AWS SDK is a quarter of the bundle; initialising it at start costs tens of ms and ~18 MiB
// of memory that an idle worker never uses (it is needed at the first upload or s3:// input).
// Only for packages whose loading has no side effects that must happen early (npm `undici`, for one,
// installs a global fetch dispatcher when loaded: it stays eager).
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * @param {string[]} packages package names, imported from our sources (imports inside node_modules
 *   are left alone: a package loaded lazily loads its own dependencies when it loads)
 * @param {string} root the directory whose node_modules the packages resolve from
 */
export function lazyPackages(packages, root) {
  const require = createRequire(path.join(root, 'package.json'));
  const wanted = new Set(packages);
  return {
    name: 'lazy-packages',
    setup(build) {
      build.onResolve({ filter: /^[@\w]/ }, (args) => {
        if (!wanted.has(args.path) || args.namespace === 'lazy-package' || args.importer.includes(`${path.sep}node_modules${path.sep}`))
          return undefined;
        return { path: args.path, namespace: 'lazy-package' };
      });
      build.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (args) => {
        const names = Object.keys(require(args.path)).filter((n) => n !== '__esModule' && n !== 'default');
        return {
          loader: 'js',
          resolveDir: root,
          contents: [
            `let real;`,
            `const load = () => (real ??= require(${JSON.stringify(args.path)}));`,
            `Object.defineProperty(exports, '__esModule', { value: true });`,
            `for (const name of ${JSON.stringify(names)}) Object.defineProperty(exports, name, { enumerable: true, get: () => load()[name] });`,
          ].join('\n'),
        };
      });
    },
  };
}
