/**
 * A state machine as data: each state lists the states it may move to. Statuses change only by
 * compare-and-set updates whose WHERE clause is `sourcesOf(table, to)`; zero rows = someone else won.
 */
export type StateTable<S extends string> = Record<S, readonly S[]>;

/** The states from which `to` may be entered. */
export function sourcesOf<S extends string>(table: StateTable<S>, to: S): S[] {
  return (Object.keys(table) as S[]).filter((from) => table[from].includes(to));
}

/** Checks at module load that every target is a declared state (a typo fails at start-up, not in a payment). */
export function checkStateTable<S extends string>(name: string, table: StateTable<S>): StateTable<S> {
  for (const [from, tos] of Object.entries(table) as Array<[string, readonly string[]]>)
    for (const to of tos) if (!(to in table)) throw new Error(`${name} state table: ${from} -> ${to} unknown`);
  return table;
}
