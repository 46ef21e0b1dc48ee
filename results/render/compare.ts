/** `compare` as text: one row per path, one block of port columns per test. */
import type { CompareData } from '../read/compare.js';
import { renderFormat, type Format, type Grid } from './grid.js';

export function compareGrid(data: CompareData): Grid {
  const blocks: Grid['blocks'] = [];
  for (const c of data.columns) {
    const last = blocks.at(-1);
    if (last && last.title === c.test) last.columns.push(String(c.port));
    else blocks.push({ title: c.test, columns: [String(c.port)] });
  }
  return { stub: ['Path'], blocks, align: 'l', rows: data.paths.map((p) => ({ stub: [p.path], cells: p.verdicts })), notes: data.notes };
}

export function renderCompare(data: CompareData, format: Format): string {
  return renderFormat(data, compareGrid, format);
}
