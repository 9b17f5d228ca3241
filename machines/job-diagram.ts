/**
 * Draws a statechart as a Mermaid `stateDiagram-v2`, read from the machine's
 * own state nodes, so the diagram in the docs cannot drift from the chart
 * that runs.
 *
 * Decisions:
 * - Named delays are drawn as `after <name>` (`after retryDelay`), which is
 *   why the job chart names every duration.
 * - Guards appear in brackets (`[retryAllowed]`); invoke completions as
 *   `<invoke id> done` / `<invoke id> error`, hence the explicit invoke ids.
 *   xstate tries an event's candidates in order, so the unguarded last one
 *   (a fallback, often the arrow to `failed`) carries the guards that must
 *   all have been false: `acquireToken done [!tokenOk && !retryAllowed]`.
 * - Mermaid cannot draw an edge between states inside *different* composite
 *   states, so an edge is lifted to the two ancestors that are siblings under
 *   the states' lowest common ancestor: `fetching → retryWait` is drawn as
 *   `paging → retryWait`, which is the `paging ⇄ retryWait` of the design.
 * - A transition declared on the machine's root (e.g. `job.cancel`) applies
 *   to every non-final top-level state and is drawn from each of them.
 * - Parallel regions are separated by Mermaid's `--`.
 *
 * {@link toStatechartGraph} exports the same states and transitions as data
 * (for the inspector, which lays the chart out in the browser): there edges
 * join the real states, not lifted ones, since a layered layout with
 * hierarchy draws an edge between states of different composite states.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly label: string;
}

/** Renders `machine` as Mermaid `stateDiagram-v2` source. */
export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root;
  const all = descendants(root);
  const keyCount = new Map<string, number>();
  for (const node of all) keyCount.set(node.key, (keyCount.get(node.key) ?? 0) + 1);
  const idOf = (node: AnyStateNode): string =>
    keyCount.get(node.key) === 1 ? safeId(node.key) : safeId(node.path.join('_'));

  // Edges, grouped by the composite state whose block draws them.
  const edgesByBlock = new Map<AnyStateNode, Edge[]>();
  const addEdge = (block: AnyStateNode, edge: Edge): void => {
    const list = edgesByBlock.get(block) ?? [];
    if (!list.some((e) => e.from === edge.from && e.to === edge.to && e.label === edge.label)) list.push(edge);
    edgesByBlock.set(block, list);
  };

  for (const source of [root, ...all]) {
    for (const { label, targets } of transitionsOf(source)) {
      const sources = source === root ? Object.values(root.states).filter((s) => s.type !== 'final') : [source];
      for (const from of sources) {
        for (const target of targets ?? [from]) {
          const lifted = lift(from, target);
          addEdge(lifted.block, { from: idOf(lifted.from), to: idOf(lifted.to), label });
        }
      }
    }
  }

  const lines = ['stateDiagram-v2'];
  const renderChildren = (node: AnyStateNode, indent: string): void => {
    const children = Object.values(node.states);
    if (node.type === 'parallel') {
      children.forEach((child, i) => {
        if (i > 0) lines.push(`${indent}--`);
        renderState(child, indent);
      });
    } else {
      for (const initial of node.initial?.target ?? []) lines.push(`${indent}[*] --> ${idOf(initial)}`);
      for (const child of children) renderState(child, indent);
    }
    for (const edge of edgesByBlock.get(node) ?? []) {
      lines.push(`${indent}${edge.from} --> ${edge.to} : ${edge.label}`);
    }
    for (const child of children) if (child.type === 'final') lines.push(`${indent}${idOf(child)} --> [*]`);
  };
  const renderState = (node: AnyStateNode, indent: string): void => {
    const id = idOf(node);
    const label = id === node.key ? null : node.key;
    if (Object.keys(node.states).length > 0) {
      if (label !== null) lines.push(`${indent}state "${label}" as ${id}`);
      lines.push(`${indent}state ${id} {`);
      renderChildren(node, `${indent}  `);
      lines.push(`${indent}}`);
    } else if (label !== null) {
      lines.push(`${indent}state "${label}" as ${id}`);
    } else {
      lines.push(`${indent}${id}`);
    }
  };
  renderChildren(root, '  ');
  return `${lines.join('\n')}\n`;
}

function descendants(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states).flatMap((child) => [child, ...descendants(child)]);
}

/** What starts a transition: an event, a named delay, an eventless `always`, an invoke's completion or failure. */
export type TransitionKind = 'event' | 'after' | 'always' | 'done' | 'error';

interface FoundTransition {
  readonly label: string;
  /** The trigger alone (`fetchPage done`, `after retryDelay`, `job.cancel`). */
  readonly trigger: string;
  readonly kind: TransitionKind;
  /** The guard as written (`retryAllowed`), or — for an unguarded fallback after guarded candidates — their negation. */
  readonly guard: string | null;
  readonly targets: ReadonlyArray<AnyStateNode> | undefined;
}

/** Every transition a node declares, with a label and its targets (undefined: targetless). */
function transitionsOf(node: AnyStateNode): FoundTransition[] {
  const delays = new Map<string, string>();
  for (const delayed of node.after) delays.set(delayed.eventType, delayName(delayed.delay));
  const found: FoundTransition[] = [];
  const addCandidates = (transitions: ReadonlyArray<{ target?: ReadonlyArray<AnyStateNode> | undefined; reenter?: boolean; guard?: unknown }>, trigger: string, kind: TransitionKind): void => {
    const earlierGuards: string[] = [];
    for (const t of transitions) {
      const own = guardName(t.guard);
      // The first candidate whose guard passes is taken: an unguarded one after guarded ones runs when all of them failed.
      const guard = own ?? (earlierGuards.length > 0 ? earlierGuards.map((name) => `!${name}`).join(' && ') : null);
      if (own !== null) earlierGuards.push(own);
      // A targetless, non-reentering transition changes no state: nothing to draw.
      if (t.target === undefined && !t.reenter) continue;
      found.push({ label: guard === null ? trigger : `${trigger} [${guard}]`, trigger, kind, guard, targets: t.target });
    }
  };
  for (const [eventType, transitions] of node.transitions) {
    const delay = delays.get(eventType);
    if (delay !== undefined) addCandidates(transitions, `after ${delay}`, 'after');
    else addCandidates(transitions, eventLabel(eventType), eventKind(eventType));
  }
  addCandidates(node.always ?? [], 'always', 'always');
  return found;
}

function delayName(delay: unknown): string {
  return typeof delay === 'string' || typeof delay === 'number' ? String(delay) : 'delay';
}

function eventLabel(eventType: string): string {
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `${done[1]} done`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `${error[1]} error`;
  return eventType;
}

function eventKind(eventType: string): TransitionKind {
  if (eventType.startsWith('xstate.done.actor.')) return 'done';
  if (eventType.startsWith('xstate.error.actor.')) return 'error';
  return 'event';
}

function guardName(guard: unknown): string | null {
  if (guard === undefined) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') {
    return (guard as { type: string }).type;
  }
  return 'guarded';
}

/** Ancestors from the root down to the node itself. */
function chain(node: AnyStateNode): AnyStateNode[] {
  const nodes: AnyStateNode[] = [];
  for (let n: AnyStateNode | undefined = node; n !== undefined; n = n.parent) nodes.unshift(n);
  return nodes;
}

/** The sibling pair under the lowest common ancestor, and that ancestor (whose block draws the edge). */
function lift(from: AnyStateNode, to: AnyStateNode): { block: AnyStateNode; from: AnyStateNode; to: AnyStateNode } {
  const a = chain(from);
  const b = chain(to);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common += 1;
  // The block is a proper ancestor of both ends (a self- or nested transition draws in the parent).
  const depth = Math.min(common, a.length - 1, b.length - 1);
  const block = a[depth - 1];
  const liftedFrom = a[depth];
  const liftedTo = b[depth];
  if (block === undefined || liftedFrom === undefined || liftedTo === undefined) {
    throw new Error(`cannot place a transition from ${from.id} to ${to.id} in a diagram`);
  }
  return { block, from: liftedFrom, to: liftedTo };
}

/** Mermaid ids: letters, digits and underscores. */
function safeId(raw: string): string {
  return raw.replace(/[^A-Za-z0-9_]/g, '_');
}

/** One state of a chart as data. */
export interface StatechartNode {
  /** The state's path joined by dots (`running.job.paging.fetching`); unique within the chart. */
  readonly id: string;
  /** The state's own name (`fetching`). */
  readonly key: string;
  /** The id of the enclosing state; null for a top-level state. */
  readonly parent: string | null;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Compound states: the id of the initial child. */
  readonly initial: string | null;
  /** A region of a parallel state. */
  readonly region: boolean;
}

/** One transition of a chart as data, between the real states (not lifted, unlike the Mermaid text). */
export interface StatechartEdge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  /** As `toMermaid` prints it: trigger and guard (`fetchPage done [retryAllowed]`). */
  readonly label: string;
  readonly trigger: string;
  readonly kind: TransitionKind;
  readonly guard: string | null;
  /** The transition is declared on the machine's root and applies to every non-final top-level state. */
  readonly fromRoot: boolean;
}

/** A statechart's states and transitions, read from the machine (the inspector lays it out in the browser). */
export interface StatechartGraph {
  /** The machine's id (`collectJob`, `inputScheduler`). */
  readonly machine: string;
  /** The id of the machine's initial state. */
  readonly initial: string | null;
  readonly nodes: ReadonlyArray<StatechartNode>;
  readonly edges: ReadonlyArray<StatechartEdge>;
}

function nodeId(node: AnyStateNode): string {
  return node.path.join('.');
}

/**
 * The chart as data: the same states and transitions `toMermaid` draws,
 * from the same reading of the machine, so the inspector's picture cannot
 * drift from the chart that runs (nor from `msgtrace diagram`).
 */
export function toStatechartGraph(machine: AnyStateMachine): StatechartGraph {
  const root = machine.root;
  const all = descendants(root);
  const nodes: StatechartNode[] = all.map((node) => ({
    id: nodeId(node),
    key: node.key,
    parent: node.parent === undefined || node.parent === root ? null : nodeId(node.parent),
    type: node.type,
    initial: node.initial?.target?.[0] === undefined ? null : nodeId(node.initial.target[0]),
    region: node.parent?.type === 'parallel',
  }));
  const edges: StatechartEdge[] = [];
  const seen = new Set<string>();
  for (const source of [root, ...all]) {
    for (const { label, trigger, kind, guard, targets } of transitionsOf(source)) {
      const fromRoot = source === root;
      const sources = fromRoot ? Object.values(root.states).filter((s) => s.type !== 'final') : [source];
      for (const from of sources) {
        for (const target of targets ?? [from]) {
          const key = `${nodeId(from)}->${nodeId(target)}:${label}`;
          if (seen.has(key)) continue;
          seen.add(key);
          edges.push({ id: `e${edges.length}`, source: nodeId(from), target: nodeId(target), label, trigger, kind, guard, fromRoot });
        }
      }
    }
  }
  const initial = root.initial?.target?.[0];
  return { machine: machine.id, initial: initial === undefined ? null : nodeId(initial), nodes, edges };
}
