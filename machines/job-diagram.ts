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
 * - Mermaid cannot draw an edge between states inside *different* composite
 *   states, so an edge is lifted to the two ancestors that are siblings under
 *   the states' lowest common ancestor: `fetching → retryWait` is drawn as
 *   `paging → retryWait`, which is the `paging ⇄ retryWait` of the design.
 * - A transition declared on the machine's root (e.g. `job.cancel`) applies
 *   to every non-final top-level state and is drawn from each of them.
 * - Parallel regions are separated by Mermaid's `--`.
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

/** Every transition a node declares, with a label and its targets (undefined: targetless). */
function transitionsOf(node: AnyStateNode): Array<{ label: string; targets: ReadonlyArray<AnyStateNode> | undefined }> {
  const delays = new Map<string, string>();
  for (const delayed of node.after) delays.set(delayed.eventType, delayName(delayed.delay));
  const found: Array<{ label: string; targets: ReadonlyArray<AnyStateNode> | undefined }> = [];
  for (const [eventType, transitions] of node.transitions) {
    for (const t of transitions) {
      // A targetless, non-reentering transition changes no state: nothing to draw.
      if (t.target === undefined && !t.reenter) continue;
      const delay = delays.get(eventType);
      const event = delay === undefined ? eventLabel(eventType) : `after ${delay}`;
      found.push({ label: withGuard(event, t.guard), targets: t.target });
    }
  }
  for (const t of node.always ?? []) {
    if (t.target === undefined) continue;
    found.push({ label: withGuard('always', t.guard), targets: t.target });
  }
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

function withGuard(event: string, guard: unknown): string {
  if (guard === undefined) return event;
  if (typeof guard === 'string') return `${event} [${guard}]`;
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') {
    return `${event} [${(guard as { type: string }).type}]`;
  }
  return `${event} [guarded]`;
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
