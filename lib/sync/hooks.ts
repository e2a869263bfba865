/**
 * `claude sync auto`: the SessionStart → pull and Stop → push hooks in Claude Code's
 * `settings.json`. Adding is idempotent and keeps every other setting; removing takes out
 * exactly the commands added (and the containers it created), nothing else.
 *
 * @module
 */

/** The hook events sync uses, and what each runs. */
export const AUTO_EVENTS = ["SessionStart", "Stop"] as const;
/** One of {@link AUTO_EVENTS}. */
export type AutoEvent = typeof AUTO_EVENTS[number];

type Json = Record<string, unknown>;

interface Group {
  matcher?: string;
  hooks?: { type?: string; command?: string }[];
}

function groupsOf(settings: Json, ev: string): Group[] | null {
  const h = settings.hooks;
  if (typeof h !== "object" || h === null || Array.isArray(h)) return null;
  const g = (h as Json)[ev];
  return Array.isArray(g) ? g as Group[] : null;
}

/** Which events run which of our commands now. */
export function autoState(
  settings: Json,
  cmds: Record<AutoEvent, string>,
): Record<AutoEvent, boolean> {
  const out = {} as Record<AutoEvent, boolean>;
  for (const ev of AUTO_EVENTS) {
    out[ev] = (groupsOf(settings, ev) ?? []).some((g) =>
      (g.hooks ?? []).some((x) => x.command === cmds[ev])
    );
  }
  return out;
}

/** What {@link addAutoHooks} created, so that removing takes out only that. */
export interface AutoRecord {
  commands: Record<AutoEvent, string>;
  /** the `hooks` object did not exist */
  createdHooks: boolean;
  /** these event arrays did not exist */
  createdEvents: AutoEvent[];
}

/** Add the hooks (a new group per event) unless they are there; returns the new settings. */
export function addAutoHooks(
  settings: Json,
  cmds: Record<AutoEvent, string>,
): { settings: Json; record: AutoRecord; changed: boolean } {
  const s = structuredClone(settings);
  const record: AutoRecord = { commands: cmds, createdHooks: false, createdEvents: [] };
  let changed = false;
  if (typeof s.hooks !== "object" || s.hooks === null || Array.isArray(s.hooks)) {
    s.hooks = {};
    record.createdHooks = true;
  }
  const hooks = s.hooks as Json;
  const present = autoState(s, cmds);
  for (const ev of AUTO_EVENTS) {
    if (present[ev]) continue;
    if (!Array.isArray(hooks[ev])) {
      hooks[ev] = [];
      record.createdEvents.push(ev);
    }
    (hooks[ev] as Group[]).push({ hooks: [{ type: "command", command: cmds[ev] }] });
    changed = true;
  }
  if (!changed && record.createdHooks) delete s.hooks;
  return { settings: changed ? s : settings, record, changed };
}

/** Remove exactly what {@link addAutoHooks} added. */
export function removeAutoHooks(
  settings: Json,
  record: AutoRecord,
): { settings: Json; changed: boolean } {
  const s = structuredClone(settings);
  let changed = false;
  for (const ev of AUTO_EVENTS) {
    const groups = groupsOf(s, ev);
    if (!groups) continue;
    const kept: Group[] = [];
    for (const g of groups) {
      const ours = (g.hooks ?? []).filter((x) => x.command === record.commands[ev]);
      if (ours.length === 0) {
        kept.push(g);
        continue;
      }
      changed = true;
      const rest = (g.hooks ?? []).filter((x) => x.command !== record.commands[ev]);
      if (rest.length) kept.push({ ...g, hooks: rest });
    }
    const hooks = s.hooks as Json;
    if (kept.length === 0 && record.createdEvents.includes(ev)) delete hooks[ev];
    else hooks[ev] = kept;
  }
  if (
    record.createdHooks && typeof s.hooks === "object" && s.hooks !== null &&
    Object.keys(s.hooks).length === 0
  ) delete s.hooks;
  return { settings: changed ? s : settings, changed };
}
