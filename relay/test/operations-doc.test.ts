// SPDX-License-Identifier: AGPL-3.0-only
/**
 * docs/operations.md is the operator's reference: every option (flag, env var, default) and
 * every metric the relay exports must be in it, so the code and the doc cannot drift apart.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { RELAY_OPTIONS, shownDefault } from '../src/bin/options.js';
import { RELAY_METRIC_NAMES } from '../src/relay-metrics.js';

const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');

/** The rows of the markdown tables under `## heading` (the whole doc without one): cells without their backticks. */
function tableRows(heading?: string): string[][] {
  let section = doc;
  if (heading !== undefined) {
    const start = doc.indexOf(`\n## ${heading}\n`);
    assert.ok(start >= 0, `docs/operations.md has a "${heading}" section`);
    const end = doc.indexOf('\n## ', start + 1);
    section = doc.slice(start, end < 0 ? undefined : end);
  }
  return section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .map((l) =>
      l
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim().replace(/^`|`$/g, '')),
    );
}

describe('docs/operations.md', () => {
  it('lists every relay option with its flag, environment variable and default', () => {
    // Options live in the Configuration table or in the table of their own section (rate limits).
    const rows = tableRows();
    for (const o of RELAY_OPTIONS) {
      const row = rows.find((r) => r[0] === `--${o.flag}`);
      assert.ok(row, `--${o.flag} needs a row (| flag | environment | default | meaning |) in a table of docs/operations.md`);
      assert.equal(row[1], o.env, `--${o.flag}: environment variable`);
      if (o.kind === 'string' || o.kind === 'int' || o.kind === 'flag') {
        const shown = shownDefault(o);
        // The doc may spell a default without the option's unit (30 days → 30).
        assert.ok(row[2] === shown || row[2] === shown.split(' ')[0], `--${o.flag}: default ${shown} (doc says ${row[2]})`);
      }
    }
    const known = new Set(RELAY_OPTIONS.map((o) => `--${o.flag}`));
    for (const r of tableRows('Configuration').slice(1)) assert.ok(known.has(r[0]!), `${r[0]} in the doc is an option of parley-relay`);
  });

  it('lists every metric the relay exports', () => {
    const rows = tableRows('Metrics');
    const documented = new Set(rows.slice(1).map((r) => r[0]));
    for (const name of RELAY_METRIC_NAMES) assert.ok(documented.has(name), `${name} is documented`);
    for (const name of documented) assert.ok((RELAY_METRIC_NAMES as readonly string[]).includes(name!), `${name} in the doc is exported`);
  });
});
