// Inclusive time per frame of a V8 CPU profile (the self-time summary is stats.ts's): a sample counts
// once for every distinct frame on its stack, so `inclusive %` reads "this much of the busy time was
// spent inside this function or what it called".
import { round, type CpuProfile } from './stats.js';

export interface InclusiveFrame {
  frame: string;
  inclusiveMs: number;
  inclusivePercent: number;
}

function frameKey(callFrame: CpuProfile['nodes'][number]['callFrame'], relativeTo: string | undefined): string {
  const { functionName, url, lineNumber } = callFrame;
  let file = url.replace(/^file:\/\//, '');
  if (relativeTo !== undefined && file.startsWith(relativeTo)) file = file.slice(relativeTo.length).replace(/^\//, '');
  const name = functionName === '' ? '(anonymous)' : functionName;
  return file === '' ? name : lineNumber > 0 ? `${name} (${file}:${lineNumber + 1})` : `${name} (${file})`;
}

export function inclusiveFrames(
  profile: CpuProfile,
  top = 15,
  relativeTo?: string,
  ignoreNative: readonly string[] = [],
): InclusiveFrame[] {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const keyOf = new Map(profile.nodes.map((node) => [node.id, frameKey(node.callFrame, relativeTo)]));
  const inclusiveUs = new Map<string, number>();
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    if (node === undefined) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)' || (url === '' && ignoreNative.includes(functionName))) continue;
    busyUs += delta;
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const key = keyOf.get(id);
      if (key === undefined || key === '(root)' || seen.has(key)) continue;
      seen.add(key);
      inclusiveUs.set(key, (inclusiveUs.get(key) ?? 0) + delta);
    }
  }
  return [...inclusiveUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, us]) => ({
      frame,
      inclusiveMs: round(us / 1000, 1),
      inclusivePercent: busyUs === 0 ? 0 : round((100 * us) / busyUs, 1),
    }));
}
