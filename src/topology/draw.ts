/**
 * SVG drawing of a graph with its MATCHA matchings: each matching in its own colour (dashed when
 * its probability is 0), its activation probability in the legend. Uses the file's positions when
 * it has them, otherwise places the nodes on a circle.
 *
 *   writeFileSync('graph.svg', drawTopologySvg(graph, matchaPlan(graph, 0.5), { title: 'er-32' }));
 */
import { circle } from './generators.js';
import type { Graph, MatchaPlan } from './types.js';

/** Colour-blind-friendly qualitative palette (Okabe–Ito, then Tableau), cycled if needed. */
const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#D55E00',
  '#56B4E9',
  '#F0E442',
  '#000000',
  '#4E79A7',
  '#F28E2B',
  '#59A14F',
  '#B07AA1',
  '#9C755F',
  '#BAB0AC',
];

export function matchingColour(j: number): string {
  return PALETTE[j % PALETTE.length]!;
}

export function drawTopologySvg(
  graph: Graph,
  plan: MatchaPlan,
  opts: { title?: string } = {},
): string {
  const size = 520;
  const pad = 40;
  const legendRow = 20;
  const legendW = 230;
  const pos = graph.positions ?? circle(graph.n);
  const xs = pos.map((p) => p[0]);
  const ys = pos.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0) || 1;
  const sx = (x: number) => pad + ((x - x0) / span) * (size - 2 * pad);
  const sy = (y: number) => pad + ((y - y0) / span) * (size - 2 * pad);
  const r = Math.max(4, Math.min(14, 180 / graph.n));
  const height = Math.max(size, pad + (plan.matchings.length + 2) * legendRow);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size + legendW}" height="${height}" viewBox="0 0 ${size + legendW} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  );
  if (opts.title)
    out.push(`<text x="${pad}" y="22" font-size="15">${escapeXml(opts.title)}</text>`);
  plan.matchings.forEach((m, j) => {
    const p = plan.probabilities[j] ?? 0;
    const dash = p === 0 ? ' stroke-dasharray="4 4"' : '';
    const width = (1 + 3 * p).toFixed(2);
    out.push(
      `<g stroke="${matchingColour(j)}" stroke-width="${width}"${dash} data-matching="${j}">`,
    );
    for (const [a, b] of m) {
      out.push(
        `<line x1="${fmt(sx(pos[a]![0]))}" y1="${fmt(sy(pos[a]![1]))}" x2="${fmt(sx(pos[b]![0]))}" y2="${fmt(sy(pos[b]![1]))}"/>`,
      );
    }
    out.push('</g>');
  });
  out.push('<g fill="white" stroke="#333" stroke-width="1.5">');
  pos.forEach((p) =>
    out.push(`<circle cx="${fmt(sx(p[0]))}" cy="${fmt(sy(p[1]))}" r="${fmt(r)}"/>`),
  );
  out.push('</g>');
  if (r >= 7) {
    out.push('<g text-anchor="middle" dominant-baseline="central" font-size="10">');
    pos.forEach((p, i) => {
      const label = graph.names?.[i] ?? String(i);
      out.push(`<text x="${fmt(sx(p[0]))}" y="${fmt(sy(p[1]))}">${escapeXml(label)}</text>`);
    });
    out.push('</g>');
  }
  const lx = size + 10;
  out.push(
    `<text x="${lx}" y="${pad}" font-weight="bold">matching (edges): p   Cb = ${plan.budget}</text>`,
  );
  plan.matchings.forEach((m, j) => {
    const y = pad + (j + 1) * legendRow;
    const p = plan.probabilities[j] ?? 0;
    out.push(
      `<line x1="${lx}" y1="${y - 4}" x2="${lx + 24}" y2="${y - 4}" stroke="${matchingColour(j)}" stroke-width="4"${p === 0 ? ' stroke-dasharray="4 4"' : ''}/>`,
      `<text x="${lx + 32}" y="${y}">M${j} (${m.length}): p = ${p.toFixed(4)}</text>`,
    );
  });
  out.push(
    `<text x="${lx}" y="${pad + (plan.matchings.length + 1) * legendRow + 6}">alpha = ${plan.alpha.toFixed(4)}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function fmt(x: number): string {
  return x.toFixed(1);
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
