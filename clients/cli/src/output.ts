// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Where the CLI writes. stdout carries data only: human lines, or one JSON object per line
 * with `--json`. stderr carries everything else: progress, notes, connection state and the
 * error report (with `--json`, each of those is one JSON line too).
 */
import type { ErrorReport } from './errors.js';
import { formatProgress } from './format.js';
import { progressJson } from './json-views.js';
import type { ProgressEvent } from './engine-contract.js';

/** A stream the CLI writes text to (process.stdout, a socket, a test's capture). */
export interface TextSink {
  write(chunk: string): unknown;
  /** True when it is a terminal. */
  readonly isTTY?: boolean;
  /** Terminal width in characters, when a terminal. */
  readonly columns?: number;
}

/** Formats and writes the CLI's output in human or JSON mode. */
export class Output {
  /** True with `--json`. */
  readonly json: boolean;
  readonly #stdout: TextSink;
  readonly #stderr: TextSink;

  constructor(stdout: TextSink, stderr: TextSink, json: boolean) {
    this.#stdout = stdout;
    this.#stderr = stderr;
    this.json = json;
  }

  /** One result: `value` as a JSON line, or the human `lines` on stdout. */
  data(value: unknown, lines: string | readonly string[]): void {
    if (this.json) this.#stdout.write(`${JSON.stringify(value)}\n`);
    else this.#writeLines(this.#stdout, lines);
  }

  /** Raw human text on stdout (the terminal QR code); nothing in JSON mode. */
  humanText(text: string): void {
    if (!this.json) this.#stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A note for the person at the terminal on stderr; in JSON mode `value`, when given, as a line. */
  note(lines: string | readonly string[], value?: unknown): void {
    if (!this.json) this.#writeLines(this.#stderr, lines);
    else if (value !== undefined) this.#stderr.write(`${JSON.stringify(value)}\n`);
  }

  /** `history 12/40 chunks` on stderr, or `{"progress":{…}}`. */
  progress(p: ProgressEvent): void {
    this.note(formatProgress(p), progressJson(p));
  }

  /** The failure report on stderr: two human lines, or `{"error":{code,message,hint}}`. */
  error(report: ErrorReport): void {
    if (this.json) {
      this.#stderr.write(`${JSON.stringify({ error: { code: report.code, message: report.message, hint: report.hint } })}\n`);
      return;
    }
    this.#stderr.write(`error: ${report.message} (${report.code})\n`);
    if (report.hint) this.#stderr.write(`hint: ${report.hint}\n`);
  }

  #writeLines(sink: TextSink, lines: string | readonly string[]): void {
    const all = typeof lines === 'string' ? [lines] : lines;
    if (all.length > 0) sink.write(`${all.join('\n')}\n`);
  }
}
