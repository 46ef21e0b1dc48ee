/**
 * Is this tool installed? One answer for every test that needs an outside program (tshark, pdflatex,
 * chromium, ...): the program's path on PATH, or undefined. A test that needs it skips itself when
 * it is missing (`it.skipIf(!tool)`), and never passes without it.
 * scripts/setup installs every program the tests use.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The path of the first of `programs` found executable on PATH; undefined when none is. */
export function installed(...programs: string[]): string | undefined {
  for (const program of programs) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      try {
        accessSync(join(dir, program), constants.X_OK);
        return join(dir, program);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

