/** The value of one sample in Prometheus text exposition, 0 when absent (labels must match exactly). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] === undefined ? [] : m[2].split(',');
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}
