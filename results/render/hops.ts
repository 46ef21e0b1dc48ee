/** `table --by-hop` as text: rows behaviour of interference, columns where on the path, cells "n / N (p%)" of paths. */
import type { HopTableData } from '../read/hops.js';
import { renderFormat, type Format, type Grid } from './grid.js';

export function hopTableGrid(data: HopTableData): Grid {
  return {
    stub: ['Test', 'Verdict'],
    blocks: [{ title: null, columns: [...data.positions] }],
    columnCaption: 'Where on the path',
    align: 'r',
    rows: data.rows.map((r) => ({ stub: [r.test, r.verdict], cells: r.cells.map((c) => (c.n === 0 ? null : `${c.n} / ${r.paths} (${c.percent.toFixed(1)}%)`)) })),
    notes: data.notes,
  };
}

export function renderHopTable(data: HopTableData, format: Format): string {
  return renderFormat(data, hopTableGrid, format);
}
