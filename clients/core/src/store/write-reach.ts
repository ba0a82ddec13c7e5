// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Which tables a statement may change: the tables it writes itself, and every table a write to
 * those reaches through the schema — triggers (the FTS index follows `messages`) and foreign
 * keys that cascade (deleting a message deletes its reactions). The read cache of
 * {@link ClientDatabase} forgets what it holds of a table as soon as a statement reaching it
 * changes a row, so the reach is taken from the schema itself, after migrations, rather than
 * listed by hand: a migration that adds a trigger or a cascade cannot leave the cache stale.
 */

/** What the schema says, as read from `sqlite_master` and `pragma_foreign_key_list`. */
export interface SchemaFacts {
  /** Every trigger: the table it fires on and its whole `CREATE TRIGGER` text. */
  readonly triggers: readonly { readonly table: string; readonly sql: string }[];
  /** Every foreign key that changes the child when the parent changes (CASCADE, SET NULL, SET DEFAULT). */
  readonly cascades: readonly { readonly parent: string; readonly child: string }[];
}

// INSERT [OR x] INTO t, REPLACE INTO t, UPDATE [OR x] t, DELETE FROM t — the statement kinds that
// change rows. Table names in this schema are plain identifiers; quoted ones are unquoted below.
const WRITE_TARGET = /\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+["`[]?([A-Za-z_][A-Za-z0-9_]*)/gi;

/** The tables `sql` names as write targets (lowercase), without following triggers. */
export function directWriteTargets(sql: string): string[] {
  const out = new Set<string>();
  for (const m of sql.matchAll(WRITE_TARGET)) {
    const name = m[1]!.toLowerCase();
    // `DO UPDATE SET` of an upsert, `UPDATE OF column` of a trigger header: keywords, not tables.
    if (name !== 'set' && name !== 'of') out.add(name);
  }
  return [...out];
}

/** Maps a statement to the tables it may change, over one schema. */
export class WriteReach {
  /** table → every table a change to it may change (itself included). */
  readonly #reach = new Map<string, readonly string[]>();
  /** statement text → the tables it may change (memoized: statements repeat). */
  readonly #bySql = new Map<string, readonly string[]>();

  constructor(facts: SchemaFacts) {
    const edges = new Map<string, Set<string>>();
    const edge = (from: string, to: string) => {
      const set = edges.get(from) ?? new Set<string>();
      set.add(to);
      edges.set(from, set);
    };
    for (const t of facts.triggers) {
      // The body's targets; the trigger's own "ON table" is not a write target.
      for (const target of directWriteTargets(t.sql)) edge(t.table.toLowerCase(), target);
    }
    for (const c of facts.cascades) edge(c.parent.toLowerCase(), c.child.toLowerCase());
    for (const from of edges.keys()) {
      const seen = new Set<string>([from]);
      const stack = [from];
      while (stack.length > 0) {
        for (const next of edges.get(stack.pop()!) ?? []) {
          if (!seen.has(next)) {
            seen.add(next);
            stack.push(next);
          }
        }
      }
      this.#reach.set(from, [...seen]);
    }
  }

  /** The tables `sql` may change (lowercase), empty for a read. */
  of(sql: string): readonly string[] {
    let tables = this.#bySql.get(sql);
    if (tables === undefined) {
      const all = new Set<string>();
      for (const t of directWriteTargets(sql)) for (const r of this.#reach.get(t) ?? [t]) all.add(r);
      tables = [...all];
      this.#bySql.set(sql, tables);
    }
    return tables;
  }
}
