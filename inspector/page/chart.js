// Statechart drawing for the inspector: the chart's states and transitions
// (exported from the machine definition by machines/job-diagram.ts, the same
// source as `msgtrace diagram`) laid out by elkjs (layered, hierarchical) and
// drawn as SVG. Layout runs once per chart; highlighting a state only
// changes classes.

const svgNs = 'http://www.w3.org/2000/svg';
const font = '12px system-ui, sans-serif';
const labelFont = '11px system-ui, sans-serif';

let measureContext = null;
function textWidth(text, fontSpec) {
  measureContext ??= document.createElement('canvas').getContext('2d');
  measureContext.font = fontSpec;
  return Math.ceil(measureContext.measureText(text).width);
}

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** Ancestors of a node id (`running.job.paging` → running, running.job). */
function ancestorsOf(id, byId) {
  const chain = [];
  for (let parent = byId.get(id)?.parent ?? null; parent !== null; parent = byId.get(parent)?.parent ?? null) chain.unshift(parent);
  return chain;
}

/** The deepest node that contains both ends (the edge is declared there); null = the root. */
function containerOf(source, target, byId) {
  const a = ancestorsOf(source, byId);
  const b = ancestorsOf(target, byId);
  let container = null;
  for (let i = 0; i < Math.min(a.length, b.length) && a[i] === b[i]; i++) container = a[i];
  return container;
}

/** A guard as label lines: a long conjunction wraps at its `&&`s. */
function guardLines(guard, maxChars = 34) {
  const parts = guard.split(' && ');
  const lines = [];
  let line = '';
  for (const part of parts) {
    const next = line === '' ? part : `${line} && ${part}`;
    if (line !== '' && next.length + 2 > maxChars) {
      lines.push(`${line} &&`);
      line = part;
    } else line = next;
  }
  lines.push(line);
  return lines.map((text, i) => `${i === 0 ? '[' : '\u2002'}${text}${i === lines.length - 1 ? ']' : ''}`);
}

/** The label lines of one drawn edge (every transition between the same two states), with their roles. */
function labelLines(members) {
  return members.flatMap((edge) => [{ text: edge.trigger, role: 'trigger' }, ...(edge.guard === null ? [] : guardLines(edge.guard).map((text) => ({ text, role: 'guard' })))]);
}

/** Transitions between the same two states are drawn as one arrow carrying all their labels. */
function drawnEdgesOf(graph) {
  const drawn = new Map();
  for (const edge of graph.edges) {
    const key = `${edge.source}\u0000${edge.target}`;
    if (!drawn.has(key)) drawn.set(key, { id: `d${drawn.size}`, source: edge.source, target: edge.target, members: [] });
    drawn.get(key).members.push(edge);
  }
  return [...drawn.values()];
}

/** Lays `graph` out with elkjs; resolves with what `drawChart` needs. */
export async function layoutChart(graph, ELK) {
  const elk = new ELK();
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const elkNodes = new Map();
  const root = {
    id: '__root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.json.edgeCoords': 'ROOT',
      'elk.json.shapeCoords': 'ROOT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '34',
      'elk.spacing.nodeNode': '26',
      'elk.spacing.edgeNode': '14',
      'elk.spacing.edgeEdge': '10',
      'elk.spacing.edgeLabel': '3',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
      // The states' declaration order is the chart's flow: edges against it are the cycles' back edges.
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.padding': '[top=12,left=12,bottom=12,right=12]',
    },
    children: [],
    edges: [],
  };
  const containerNode = (id) => (id === null ? root : elkNodes.get(id));
  for (const node of graph.nodes) {
    const hasChildren = graph.nodes.some((other) => other.parent === node.id);
    const elkNode = hasChildren
      ? { id: node.id, layoutOptions: { 'elk.padding': '[top=30,left=12,bottom=12,right=12]' }, children: [], edges: [] }
      : { id: node.id, width: Math.max(84, textWidth(node.key, font) + 30), height: 32 };
    elkNodes.set(node.id, elkNode);
  }
  for (const node of graph.nodes) containerNode(node.parent).children.push(elkNodes.get(node.id));
  // Initial markers: a dot in each compound (and the root) pointing at its initial state.
  const initials = [{ parent: null, target: graph.initial }, ...graph.nodes.filter((n) => n.initial !== null).map((n) => ({ parent: n.id, target: n.initial }))];
  for (const { parent, target } of initials) {
    if (target === null) continue;
    const id = `__initial:${parent ?? ''}`;
    // First in its container: the model order is the flow, and the flow starts here.
    containerNode(parent).children.unshift({ id, width: 12, height: 12 });
    containerNode(parent).edges.unshift({ id: `${id}->`, sources: [id], targets: [target] });
  }
  const drawnEdges = drawnEdgesOf(graph);
  for (const edge of drawnEdges) {
    const lines = labelLines(edge.members);
    const width = Math.max(...lines.map((line) => textWidth(line.text, labelFont))) + 4;
    containerNode(containerOf(edge.source, edge.target, byId)).edges.push({
      id: edge.id,
      sources: [edge.source],
      targets: [edge.target],
      labels: [{ id: `${edge.id}:label`, text: lines.map((line) => line.text).join('\n'), width, height: lines.length * 13 + 2 }],
    });
  }
  const laidOut = await elk.layout(root);
  return { graph, laidOut, drawnEdges };
}

function collect(node, into = []) {
  for (const child of node.children ?? []) {
    into.push(child);
    collect(child, into);
  }
  return into;
}

function collectEdges(node, into = []) {
  for (const edge of node.edges ?? []) into.push(edge);
  for (const child of node.children ?? []) collectEdges(child, into);
  return into;
}

const failureTargets = new Set(['failed', 'timedOut', 'cancelled']);

/** Draws a laid-out chart into `container` (replacing what was there); returns the SVG. */
export function drawChart(container, { graph, laidOut, drawnEdges }, options = {}) {
  container.replaceChildren();
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const edgesById = new Map(drawnEdges.map((edge) => [edge.id, edge]));
  const width = Math.ceil(laidOut.width);
  const height = Math.ceil(laidOut.height);
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart', role: 'img', 'aria-label': options.title ?? graph.machine }, container);
  const defs = el('defs', {}, svg);
  for (const [id, cls] of [['arrow', 'arrow'], ['arrow-fail', 'arrow arrow-fail'], ['arrow-taken', 'arrow arrow-taken']]) {
    const marker = el('marker', { id: `${options.idPrefix ?? ''}${id}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: cls }, marker);
  }
  const shapes = collect(laidOut);
  const layerCompound = el('g', { class: 'compounds' }, svg);
  const layerEdges = el('g', { class: 'edges' }, svg);
  const layerNodes = el('g', { class: 'nodes' }, svg);
  const layerLabels = el('g', { class: 'edge-labels' }, svg);

  for (const shape of shapes) {
    if (shape.id.startsWith('__initial:')) {
      el('circle', { cx: shape.x + 6, cy: shape.y + 6, r: 6, class: 'initial' }, layerNodes);
      continue;
    }
    const node = byId.get(shape.id);
    if (node === undefined) continue;
    const compound = (shape.children ?? []).length > 0;
    const group = el('g', { class: `state state-${node.type}${compound ? ' compound' : ''}${node.region ? ' region' : ''}`, 'data-state-id': node.id, 'data-key': node.key }, compound ? layerCompound : layerNodes);
    el('title', {}, group).textContent = node.id;
    el('rect', { x: shape.x, y: shape.y, width: shape.width, height: shape.height, rx: compound ? 10 : 14, class: 'state-box' }, group);
    if (node.type === 'final') el('rect', { x: shape.x + 3, y: shape.y + 3, width: shape.width - 6, height: shape.height - 6, rx: 11, class: 'state-inner' }, group);
    const text = el('text', compound ? { x: shape.x + 10, y: shape.y + 18, class: 'state-title' } : { x: shape.x + shape.width / 2, y: shape.y + shape.height / 2 + 4, class: 'state-name', 'text-anchor': 'middle' }, group);
    text.textContent = node.type === 'parallel' ? `${node.key} (parallel)` : node.key;
  }

  for (const elkEdge of collectEdges(laidOut)) {
    const edge = edgesById.get(elkEdge.id);
    const failure = edge !== undefined && failureTargets.has(byId.get(edge.target)?.key);
    for (const section of elkEdge.sections ?? []) {
      const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
      const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
      const path = el('path', { d, class: `edge${failure ? ' edge-fail' : ''}${edge === undefined ? ' edge-initial' : ''}`, 'marker-end': `url(#${options.idPrefix ?? ''}${failure ? 'arrow-fail' : 'arrow'})` }, layerEdges);
      if (edge !== undefined) {
        path.setAttribute('data-edge-ids', edge.members.map((member) => member.id).join(' '));
        path.setAttribute('data-source', edge.source);
        path.setAttribute('data-target', edge.target);
      }
    }
    for (const label of elkEdge.labels ?? []) {
      if (edge === undefined) continue;
      const text = el('text', { x: label.x + 2, y: label.y + 11, class: `edge-label${failure ? ' edge-label-fail' : ''}`, 'data-edge-ids': edge.members.map((member) => member.id).join(' ') }, layerLabels);
      labelLines(edge.members).forEach((line, i) => {
        const span = el('tspan', { x: label.x + 2, dy: i === 0 ? 0 : 13, class: line.role }, text);
        span.textContent = line.text;
      });
    }
  }
  return svg;
}

/**
 * Highlights `activeId` (and marks its ancestors) in a drawn chart; null
 * clears. `tone` colours the active state (`retry`, `fail`, `done`, `lost`).
 */
export function highlightState(svg, graph, activeId, tone = 'active') {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const path = activeId === null ? [] : ancestorsOf(activeId, byId);
  for (const group of svg.querySelectorAll('[data-state-id]')) {
    const id = group.getAttribute('data-state-id');
    group.classList.toggle('active', id === activeId);
    group.classList.toggle('active-ancestor', path.includes(id));
    for (const t of ['tone-active', 'tone-retry', 'tone-fail', 'tone-done', 'tone-lost']) group.classList.toggle(t, id === activeId && t === `tone-${tone}`);
  }
}

/** The chart node a flattened state name stands for (`paging` → `running.job.paging`). */
export function nodeForState(graph, stateName) {
  if (stateName === null || stateName === undefined) return null;
  if (graph.nodes.some((node) => node.id === stateName)) return stateName;
  const matches = graph.nodes.filter((node) => node.key === stateName);
  return matches.length === 1 ? matches[0].id : null;
}
