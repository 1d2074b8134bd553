/**
 * The report page: one self-contained HTML file (inline CSS, figures as inline SVG, no script that
 * fetches anything), so it opens offline and can be mailed or archived as is. Each figure's
 * Vega-Lite spec is saved beside the page (figures/<name>.vl.json) to restyle it, and `png`
 * writes a PNG of each figure for papers. The figures' data also travel in the page as JSON
 * (`<script type="application/json" id="figure-data">`), so a reader or a test can check every
 * number drawn against the records.
 *
 *   const doc = { title: 'run-s1', sections: runSections(readRunDir(dir), {}) };
 *   const { file } = await writeReport(doc, join(dir, 'report.html'), { png: 'figs/' });
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { VlSpec } from './charts.js';
import { renderSvg, svgToPng } from './render.js';

export interface Figure {
  /** Unique in the page; the file name of its spec and PNG. */
  name: string;
  title: string;
  caption: string;
  spec: VlSpec;
  /** The series drawn (embedded for checks). */
  data: unknown;
}

export interface Section {
  id: string;
  title: string;
  /** Preformatted text (the run summary, a table). */
  text?: string;
  /** A table: header and rows of cells. */
  table?: { header: string[]; rows: string[][] };
  /** Said when the section has no figure, or about its figures. */
  note?: string;
  figures: Figure[];
}

export interface ReportDoc {
  title: string;
  subtitle?: string;
  sections: Section[];
}

export interface WrittenReport {
  file: string;
  bytes: number;
  specs: string[];
  pngs: string[];
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** JSON safe inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

const CSS = `
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px;opacity:.85}
nav{padding:8px 28px;font-size:13px;background:#eef1f4;position:sticky;top:0;z-index:1}
nav a{margin-right:14px;color:#1f4f7f;text-decoration:none}
main{padding:8px 28px 40px}
section{margin:18px 0 28px}h2{font-size:17px;border-bottom:1px solid #ccd;padding-bottom:4px}
figure{display:inline-block;vertical-align:top;margin:8px 18px 14px 0;background:#fff;padding:8px;border:1px solid #e3e6ea}
figcaption{font-size:12px;color:#555;max-width:660px;margin-top:4px}
figure h3{font-size:13px;margin:0 0 6px}
pre{background:#fff;border:1px solid #e3e6ea;padding:10px;font-size:12px;overflow-x:auto}
table{border-collapse:collapse;font-size:12px;background:#fff}
th,td{border:1px solid #dde;padding:3px 8px;text-align:right}th{background:#eef1f4}
td:first-child,th:first-child{text-align:left}
.note{font-size:13px;color:#555}
`;

/** Render every figure and lay out the page. */
export async function renderPage(
  doc: ReportDoc,
): Promise<{ html: string; svgs: Map<string, string> }> {
  const svgs = new Map<string, string>();
  for (const s of doc.sections)
    for (const f of s.figures) svgs.set(f.name, await renderSvg(f.spec));
  const data = Object.fromEntries(
    doc.sections.flatMap((s) => s.figures.map((f) => [f.name, f.data])),
  );
  const section = (s: Section) =>
    [
      `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>`,
      s.note ? `<p class="note">${esc(s.note)}</p>` : '',
      s.text ? `<pre>${esc(s.text)}</pre>` : '',
      s.table
        ? `<table><thead><tr>${s.table.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${s.table.rows
            .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
            .join('')}</tbody></table>`
        : '',
      ...s.figures.map(
        (f) =>
          `<figure data-figure="${esc(f.name)}"><h3>${esc(f.title)}</h3>${svgs.get(f.name)}<figcaption>${esc(f.caption)} <span class="spec">Spec: figures/${esc(f.name)}.vl.json</span></figcaption></figure>`,
      ),
      '</section>',
    ].join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.title)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>${esc(doc.title)}</h1>${doc.subtitle ? `<p>${esc(doc.subtitle)}</p>` : ''}</header>
<nav>${doc.sections.map((s) => `<a href="#${esc(s.id)}">${esc(s.title)}</a>`).join('')}</nav>
<main>
${doc.sections.map(section).join('\n')}
</main>
<script type="application/json" id="figure-data">${scriptJson(data)}</script>
</body></html>
`;
  return { html, svgs };
}

function writeAtomic(file: string, content: string | Buffer): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

/** Write the page, its figures' specs beside it, and PNGs into `png` when given. */
export async function writeReport(
  doc: ReportDoc,
  file: string,
  opts: { png?: string } = {},
): Promise<WrittenReport> {
  const { html, svgs } = await renderPage(doc);
  const specs: string[] = [];
  const pngs: string[] = [];
  const figures = doc.sections.flatMap((s) => s.figures);
  for (const f of figures) {
    const specFile = join(dirname(file), 'figures', `${f.name}.vl.json`);
    writeAtomic(specFile, `${JSON.stringify(f.spec, null, 1)}\n`);
    specs.push(specFile);
    if (opts.png) {
      const pngFile = join(opts.png, `${f.name}.png`);
      writeAtomic(pngFile, await svgToPng(svgs.get(f.name)!));
      pngs.push(pngFile);
    }
  }
  writeAtomic(file, html);
  return { file, bytes: Buffer.byteLength(html), specs, pngs };
}
