/** A small grouped bar chart in SVG (no dependency): one group per category, one bar per series. */
export interface BarSeries {
  name: string;
  color: string;
  values: number[];
}

export function barChartSvg(title: string, yLabel: string, categories: string[], series: BarSeries[], width = 720, height = 320): string {
  const pad = { l: 60, r: 130, t: 30, b: 40 };
  const yMax = Math.max(1, ...series.flatMap((s) => s.values)) * 1.1;
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const group = w / categories.length;
  const bar = (group * 0.7) / series.length;
  const y = (v: number): number => pad.t + h - (v / yMax) * h;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad.l}" y="18" font-size="13">${esc(title)}</text>`,
    ...[0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => {
      const v = yMax * f;
      return `<text x="${pad.l - 5}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text><line x1="${pad.l}" y1="${y(v)}" x2="${pad.l + w}" y2="${y(v)}" stroke="#eee"/>`;
    }),
    `<line x1="${pad.l}" y1="${pad.t + h}" x2="${pad.l + w}" y2="${pad.t + h}" stroke="#333"/>`,
    `<text x="14" y="${pad.t + h / 2}" transform="rotate(-90 14 ${pad.t + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  categories.forEach((c, i) => {
    const x0 = pad.l + i * group + group * 0.15;
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      const x = x0 + j * bar;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${(pad.t + h - y(v)).toFixed(1)}" fill="${s.color}"/>`);
      parts.push(`<text x="${(x + bar / 2).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${Math.round(v)}</text>`);
    });
    parts.push(`<text x="${(pad.l + i * group + group / 2).toFixed(1)}" y="${pad.t + h + 15}" text-anchor="middle">${esc(c)}</text>`);
  });
  series.forEach((s, j) => {
    const ly = pad.t + 10 + j * 16;
    parts.push(`<rect x="${pad.l + w + 15}" y="${ly - 9}" width="10" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${pad.l + w + 30}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
