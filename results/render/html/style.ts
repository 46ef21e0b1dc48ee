/** The report's look: one inline style sheet (the CSP allows nothing else), the verdict classes' colours. */
import { VERDICT_CLASSES, type VerdictClass } from '../../verdicts.js';

/** Scripts, loads and everything else forbidden; inline style and data: images allowed. */
export const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

type Coloured = Exclude<VerdictClass, 'none'>;

/** Background colours of the verdict classes (the Chromium test looks for the rendered pixels). */
export const VERDICT_COLOURS: Record<Coloured, string> = {
  clean: '#2b8a3e',
  interference: '#f59f00',
  broken: '#e03131',
  intercepted: '#9c36b5',
  inconclusive: '#adb5bd',
  unknown: '#748ffc',
};

const TEXT_COLOURS: Record<Coloured, string> = {
  clean: '#ffffff',
  interference: '#212529',
  broken: '#ffffff',
  intercepted: '#ffffff',
  inconclusive: '#212529',
  unknown: '#ffffff',
};

const classRules = VERDICT_CLASSES.filter((c): c is Coloured => c !== 'none')
  .map((c) => `.v-${c} { background: ${VERDICT_COLOURS[c]}; color: ${TEXT_COLOURS[c]}; }`).join('\n');

/** The style sheet: constant text of this module (nothing from the database), so the one raw output of the templates. */
export const STYLE_SHEET = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; margin: 0 1.5em 3em; }
h1 { margin: 0.6em 0 0.2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #dee2e6; padding-bottom: 0.2em; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.5em 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
nav a { margin-right: 1em; }
.note { color: #495057; max-width: 70em; }
.truncated { background: #fff3bf; border-left: 4px solid #f59f00; padding: 0.4em 0.8em; color: #212529; }
.scroll { overflow-x: auto; }
table.heatmap { border-collapse: separate; border-spacing: 2px; }
table.heatmap th { font-weight: 600; }
table.heatmap th.test-h { vertical-align: bottom; padding: 0 0 0.3em; font-size: 12px; }
table.heatmap th.test-h span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
table.heatmap th.test-h a { color: inherit; text-decoration: none; border-left: 1px dotted #868e96; }
table.heatmap th.path-h { text-align: left; vertical-align: bottom; }
table.heatmap th.port-h { font-size: 10px; font-weight: normal; color: #495057; }
table.heatmap th.path { text-align: left; white-space: nowrap; position: sticky; left: 0; background: #fff; padding-right: 0.6em; font-weight: normal; }
td.cell { width: 2.8em; min-width: 2.8em; height: 1.7em; padding: 0; text-align: center; font: 11px/1.7em ui-monospace, "DejaVu Sans Mono", monospace; }
td.cell a { display: block; color: inherit; text-decoration: none; }
td.cell a:hover { outline: 2px solid #1c7ed6; }
td.v-none { background: #fff; outline: 1px dotted #ced4da; outline-offset: -1px; }
${classRules}
.chip { display: inline-block; width: 1em; height: 1em; vertical-align: -0.15em; margin-right: 0.4em; border-radius: 2px; }
.chip.v-none { background: #fff; outline: 1px dotted #868e96; outline-offset: -1px; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3em 1.5em; }
table.paper { border-collapse: collapse; }
table.paper th, table.paper td { padding: 0.15em 0.7em; }
table.paper thead th { border-bottom: 1px solid #495057; text-align: center; }
table.paper tbody th { text-align: left; font-weight: 600; }
table.paper td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.paper td.empty { color: #adb5bd; }
table.paper tr.first-of-test > * { border-top: 1px solid #dee2e6; }
table.paper tr.inconclusive td { color: #868e96; }
.drill { border: 1px solid #dee2e6; border-radius: 4px; padding: 0.4em 1em; margin: 0.8em 0; }
.drill:target { outline: 3px solid #1c7ed6; background: #f1f8ff; }
.drill h4 { margin: 0.3em 0; }
.drill pre { overflow-x: auto; background: #f8f9fa; padding: 0.5em; margin: 0.3em 0; font-size: 12px; }
.drill dl { display: grid; grid-template-columns: max-content auto; gap: 0 1em; margin: 0.3em 0; }
.drill dt { color: #495057; }
.drill dd { margin: 0; }
.verdict { padding: 0 0.35em; border-radius: 3px; }
.l-direction { font-weight: 700; }
.l-note { color: #868e96; }
.l-row { color: #495057; }
.d-interference { color: #c92a2a; font-weight: 700; }
.d-isn-offset { color: #5f3dc4; }
.back { font-size: 12px; }
`;
