// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Runs the README's walkthrough as written: every `npx parley …` line of the marked block, as a
 * real `parley` process against a real relay process, in a fresh directory. Only the relay URL
 * (the test's relay listens on a free port) and the link code (printed by `parley link`) are
 * substituted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';

const PARLEY = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');

/** Splits a shell line into words (single and double quotes; no expansions are used in the README). */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]!);
  return out;
}

/** The `npx parley` lines of the README block marked `name`. */
function walkthrough(name = 'walkthrough'): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const block = new RegExp(`<!-- ${name}[ :][^>]*-->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\s*<!-- \\/${name} -->`).exec(readme);
  assert.ok(block, `README has a marked ${name} block`);
  return block[1]!.split('\n').filter((l) => l.startsWith('npx parley '));
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function parley(args: string[], cwd: string, onStdout?: (text: string) => void): { done: Promise<Run> } {
  const child = spawn(process.execPath, [PARLEY, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_HOME: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onStdout?.(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return { done: new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr }))) };
}

describe('README walkthrough', () => {
  let relay: RelayProcess;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.stop();
  });

  /** The directory both walkthroughs run in (the groups one uses the first one's profiles). */
  const cwd = mkdtempSync(join(tmpdir(), 'parley-walkthrough-'));

  it('runs every command of the walkthrough, as written, successfully', async () => {
    const lines = walkthrough();
    assert.ok(lines.length >= 8, 'the walkthrough has its commands');
    const outputs: Array<{ line: string; run: Run }> = [];
    let linking: { done: Promise<Run>; code: Promise<string> } | undefined;
    for (const line of lines) {
      const args = words(line.replace('http://127.0.0.1:7070', relay.url)).slice(2); // drop `npx parley`
      if (args[0] === 'link' && args[1] !== 'approve') {
        let found: (code: string) => void = () => {};
        const code = new Promise<string>((resolve) => (found = resolve));
        const proc = parley(args, cwd, (out) => {
          const m = /parley-link:[A-Za-z0-9_-]+/.exec(out);
          if (m) found(m[0]);
        });
        linking = { done: proc.done, code };
        continue;
      }
      if (args[0] === 'link' && args[1] === 'approve') {
        assert.ok(linking, 'parley link runs before parley link approve');
        args[2] = await Promise.race([linking.code, new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no link code printed')), 15_000))]);
        const run = await parley(args, cwd).done;
        outputs.push({ line, run });
        assert.equal(run.code, 0, `${line}\n${run.stderr}`);
        const linked = await linking.done;
        outputs.push({ line: 'npx parley link …', run: linked });
        assert.equal(linked.code, 0, `parley link\n${linked.stderr}`);
        continue;
      }
      const run = await parley(args, cwd).done;
      outputs.push({ line, run });
      assert.equal(run.code, 0, `${line}\n${run.stdout}\n${run.stderr}`);
    }
    const out = (pattern: RegExp) => outputs.find((o) => pattern.test(o.line))!.run.stdout;
    assert.match(out(/receive --profile \.\/bob/), /Lunch at noon\?/);
    assert.match(out(/receive --profile \.\/alice$/), /Noon works/);
    assert.match(out(/receipts bob/), /bob@localhost {2}delivered/, 'bob’s delivery receipt reached alice');
    assert.match(out(/search/), /[Ll]unch/);
    const history = out(/history bob --profile \.\/alice-laptop/);
    assert.match(history, /Lunch at noon\?/, 'the new device received the history');
    assert.match(history, /Noon works/);
    assert.match(out(/verify/), /(\d{5}\s+){11}\d{5}/);
  });

  it('runs the groups walkthrough after it, as written, successfully', async () => {
    const lines = walkthrough('walkthrough-groups');
    assert.ok(lines.length >= 6, 'the groups walkthrough has its commands');
    const outputs: Array<{ line: string; run: Run }> = [];
    for (const line of lines) {
      const run = await parley(words(line.replace('http://127.0.0.1:7070', relay.url)).slice(2), cwd).done;
      outputs.push({ line, run });
      assert.equal(run.code, 0, `${line}\n${run.stdout}\n${run.stderr}`);
    }
    const out = (pattern: RegExp) => outputs.find((o) => pattern.test(o.line))!.run.stdout;
    assert.match(out(/receive --profile \.\/bob/), /Saturday 9:00 at the wall\?/);
    const carol = out(/receive --profile \.\/carol/);
    assert.match(carol, /Saturday 9:00 at the wall\?/);
    assert.match(carol, /I'm in, bringing the rope/);
    const info = out(/group info/);
    for (const who of ['alice@localhost', 'bob@localhost', 'carol@localhost']) assert.match(info, new RegExp(who));
  });
});
