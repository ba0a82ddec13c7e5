// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as libsignal from '@signalapp/libsignal-client';
import * as api from '../src/index.js';
import * as testing from '../src/testing/index.js';

const srcDist = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Relative modules a declaration file re-exports or imports, transitively. */
function declarationClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/from '(\.[^']+)\.js'/g)) visit(join(dirname(file), `${m[1]}.d.ts`));
  };
  visit(entry);
  return seen;
}

it('exposes no libsignal type in the declarations of its entries', () => {
  for (const entry of ['index.d.ts', 'testing/index.d.ts']) {
    const files = declarationClosure(join(srcDist, entry));
    assert.ok(files.size > 3);
    for (const file of files) assert.doesNotMatch(readFileSync(file, 'utf8'), /@signalapp/, file);
  }
});

it('exports no libsignal value', () => {
  const theirs = new Set<unknown>(Object.values(libsignal));
  for (const [name, value] of [...Object.entries(api), ...Object.entries(testing)]) {
    assert.equal(theirs.has(value), false, name);
  }
});
