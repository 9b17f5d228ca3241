/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and sums self
 * time per function, so a profile can be read in a terminal and quoted in a
 * report without a browser's DevTools.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly pct: number;
}

export async function topSelfTime(file: string, top = 25): Promise<SelfTime[]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, { name: string; where: string; us: number }>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    all += us;
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    const where = frame.url ? `${frame.url.replace(/^file:\/\/.*?\/(node_modules|work\/main)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName}|${where}`;
    const entry = totals.get(key) ?? { name: frame.functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    totals.set(key, entry);
  });
  return [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((entry) => ({ name: entry.name, where: entry.where, selfMs: entry.us / 1000, pct: (100 * entry.us) / all }));
}
