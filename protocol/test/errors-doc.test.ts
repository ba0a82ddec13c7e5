// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../src/index.js';

// Compiled to protocol/dist/test/, so the repository root is three levels up.
const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

describe('error code registry', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    it(`documents ${code} in docs/protocol.md with its status and close code`, () => {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      assert.ok(row, `no table row for ${code}`);
      assert.ok(row.includes(`| ${info.status} |`), `${code} row lacks status ${info.status}`);
      if ('close' in info) assert.ok(row.includes(`| ${info.close} |`), `${code} row lacks close code ${info.close}`);
    });
  }
  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    for (const code of documented) assert.ok(code! in ERROR_CODES, `${code} is documented but not in the registry`);
  });
});
