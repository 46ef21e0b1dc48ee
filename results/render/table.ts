/** The paper table as text: cells "n / N (p%)" of paths, one block of port columns per group. */
import { NO_GROUP } from '../grouping.js';
import type { TableCell, TableData } from '../read/table.js';
import { renderFormat, type Format, type Grid } from './grid.js';

/** "n / N (p%)" for a verdict row, "n" for an inconclusive row; null (shown '-') when the column has no result. */
export function formatCell(cell: TableCell, inconclusive: boolean): string | null {
  if (inconclusive) return cell.N === 0 ? null : String(cell.n);
  return cell.percent === null ? null : `${cell.n} / ${cell.N} (${cell.percent.toFixed(1)}%)`;
}

export function tableGrid(data: TableData): Grid {
  const ports = [...new Set(data.columns.map((c) => c.port))].map(String);
  const blocks = data.groupBy === null
    ? [{ title: null, columns: ports }]
    : data.groups.map((g) => ({ title: g.value ?? NO_GROUP, columns: ports }));
  return {
    stub: ['Test', 'Verdict'],
    blocks,
    columnCaption: 'Port',
    align: 'r',
    rows: data.rows.map((r) => ({ stub: [r.test, r.verdict], cells: r.cells.map((c) => formatCell(c, r.inconclusive)) })),
    notes: data.notes,
  };
}

export function renderTable(data: TableData, format: Format): string {
  return renderFormat(data, tableGrid, format);
}
