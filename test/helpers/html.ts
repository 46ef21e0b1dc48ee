/**
 * Just enough HTML reading for the report tests: start tags with their attributes (quoted values may
 * hold '>'), the text up to an element's end tag, and entity decoding. Works on the report as written
 * and on Chromium's serialization of its DOM (--dump-dom).
 */

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export function unescapeHtml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return NAMED[entity.toLowerCase()] ?? whole;
  });
}

const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

export function parseAttributes(text: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const m of text.matchAll(ATTRIBUTE)) attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

export interface Element {
  attrs: Record<string, string>;
  /** Offset of '<' of the start tag. */
  start: number;
  /** Offset just past the start tag's '>'. */
  end: number;
}

/** Every start tag `<tag ...>` in document order. */
export function startTags(html: string, tag: string): Element[] {
  const re = new RegExp(`<${tag}((?:\\s+[^\\s"'>/=]+(?:\\s*=\\s*(?:"[^"]*"|'[^']*'|[^\\s"'=<>\`]+))?)*)\\s*/?>`, 'gi');
  return [...html.matchAll(re)].map((m) => ({ attrs: parseAttributes(m[1]), start: m.index, end: m.index + m[0].length }));
}

/** The text of an element (tags dropped, entities decoded) up to the first `</tag>` after its start tag. */
export function textOf(html: string, element: Element, tag: string): string {
  const close = html.indexOf(`</${tag}>`, element.end);
  return unescapeHtml(html.slice(element.end, close < 0 ? undefined : close).replace(/<[^>]*>/g, ''));
}

/** Every id="..." of the document. */
export function ids(html: string): Set<string> {
  const found = new Set<string>();
  for (const m of html.matchAll(/<[a-z][a-z0-9]*((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>/gi)) {
    const id = parseAttributes(m[1]).id;
    if (id !== undefined) found.add(id);
  }
  return found;
}

export interface HeatmapCell {
  path: string;
  test: string;
  port: string;
  verdict: string;
  /** 'clean', 'interference', ... (the v-* class). */
  cls: string;
  /** The drill-down the cell links to, if any. */
  href?: string;
}

/** The heatmap's rows (`<tr data-path>`), each with its cells (`<td class="cell ...">`) in order. */
export function heatmap(html: string): Array<{ path: string; cells: HeatmapCell[] }> {
  const start = html.indexOf('<table class="heatmap"');
  if (start < 0) return [];
  const body = html.slice(start, html.indexOf('</table>', start));
  const rows = startTags(body, 'tr').filter((r) => r.attrs['data-path'] !== undefined);
  return rows.map((row, i) => {
    const slice = body.slice(row.end, i + 1 < rows.length ? rows[i + 1].start : undefined);
    const cells = startTags(slice, 'td').filter((td) => td.attrs.class?.split(/\s+/).includes('cell')).map((td): HeatmapCell => {
      const cls = td.attrs.class.split(/\s+/).find((c) => c.startsWith('v-'))?.slice(2) ?? '';
      const link = startTags(slice.slice(td.end, slice.indexOf('</td>', td.end)), 'a')[0];
      return {
        path: td.attrs['data-path'], test: td.attrs['data-test'], port: td.attrs['data-port'], verdict: td.attrs['data-verdict'], cls,
        ...(link ? { href: link.attrs.href } : {}),
      };
    });
    return { path: row.attrs['data-path'], cells };
  });
}
