/**
 * Vega-Lite spec -> SVG, in Node, with no browser and no canvas: Vega's scenegraph has its own
 * SVG renderer. PNGs for papers come from that SVG through resvg (a Rust renderer shipped inside
 * its npm package). Both libraries load on first use, so commands that draw nothing never pay for
 * them.
 *
 *   const svg = await renderSvg(accuracyChart(series));
 *   writeFileSync('accuracy.png', await svgToPng(svg));
 */
import type { VlSpec } from './charts.js';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

let libs: Promise<[Vega, VegaLite]> | undefined;

const load = () => {
  libs ??= Promise.all([import('vega'), import('vega-lite')]);
  return libs;
};

export async function renderSvg(spec: VlSpec): Promise<string> {
  const [vega, vl] = await load();
  const compiled = vl.compile(spec as unknown as Parameters<VegaLite['compile']>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG of an SVG at `scale` times its size (2: sharp in print at the figure's width). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  }).render();
  return png.asPng();
}
