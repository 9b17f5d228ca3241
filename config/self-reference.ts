/**
 * A YAML anchor may contain its own alias (`a: &a [*a]`); the yaml library
 * then builds a JS object that contains itself, on which validation would
 * recurse forever. Found before validating, and named by where it loops.
 */
import { formatPath } from './config-path.ts';

interface Frame {
  readonly node: object;
  readonly path: readonly PropertyKey[];
  readonly children: ReadonlyArray<readonly [PropertyKey, unknown]>;
  next: number;
}

/**
 * The key path at which `root` first refers back to one of its own
 * containers, or null when it is a tree (shared, non-circular parts — an
 * alias used twice — are fine). Iterative, so a deeply nested file cannot
 * exhaust the stack; each object is walked once.
 */
export function findSelfReference(root: unknown): string | null {
  if (!isContainer(root)) return null;
  const onPath = new Set<object>();
  const done = new Set<object>();
  const open = (node: object, path: readonly PropertyKey[]): Frame => {
    onPath.add(node);
    const children = Array.isArray(node) ? node.map((child, index): [PropertyKey, unknown] => [index, child]) : Object.entries(node);
    return { node, path, children, next: 0 };
  };
  const stack: Frame[] = [open(root, [])];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const entry = frame.children[frame.next];
    if (entry === undefined) {
      stack.pop();
      onPath.delete(frame.node);
      done.add(frame.node);
      continue;
    }
    frame.next += 1;
    const [key, child] = entry;
    if (!isContainer(child) || done.has(child)) continue;
    const path = [...frame.path, key];
    if (onPath.has(child)) return formatPath(path);
    stack.push(open(child, path));
  }
  return null;
}

const isContainer = (value: unknown): value is object => typeof value === 'object' && value !== null;
