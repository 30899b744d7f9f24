/** A small SVG line chart (no dependency): series over a shared x axis in seconds. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

export function lineChartSvg(title: string, yLabel: string, series: Series[], width = 720, height = 320): string {
  const pad = { l: 60, r: 150, t: 30, b: 40 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys) * 1.1;
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const x = (v: number) => pad.l + (v / xMax) * w;
  const y = (v: number) => pad.t + h - (v / yMax) * h;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks = (max: number, n: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad.l}" y="18" font-size="13">${esc(title)}</text>`,
    `<line x1="${pad.l}" y1="${pad.t + h}" x2="${pad.l + w}" y2="${pad.t + h}" stroke="#333"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + h}" stroke="#333"/>`,
    ...ticks(xMax, 6).map((v) => `<text x="${x(v)}" y="${pad.t + h + 15}" text-anchor="middle">${Math.round(v)}</text>`),
    `<text x="${pad.l + w / 2}" y="${height - 5}" text-anchor="middle">seconds</text>`,
    ...ticks(yMax, 5).map((v) => `<text x="${pad.l - 5}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text><line x1="${pad.l}" y1="${y(v)}" x2="${pad.l + w}" y2="${y(v)}" stroke="#eee"/>`),
    `<text x="14" y="${pad.t + h / 2}" transform="rotate(-90 14 ${pad.t + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  series.forEach((s, i) => {
    const d = s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${d}"/>`);
    parts.push(`<rect x="${pad.l + w + 15}" y="${pad.t + i * 18}" width="12" height="3" fill="${s.color}"/>`);
    parts.push(`<text x="${pad.l + w + 32}" y="${pad.t + i * 18 + 5}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
