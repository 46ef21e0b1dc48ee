/**
 * The report's templates (Eta; see engine.ts): every `<%= %>` is escaped; `<%~ %>` only includes
 * another of these templates or prints the constant style sheet. Each template prints whole lines,
 * each ending in a newline. The data they print is prepared in report.ts: templates only print and
 * loop, they compute nothing.
 */
import { CSP } from './style.js';

const document = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="<%= it.generator %>">
<title>mbprobe report: <%= it.title %></title>
<style><%~ it.styleSheet %></style>
</head>
<body>
<header>
<h1>mbprobe report</h1>
<dl class="meta">
<dt>Database</dt><dd><code id="database"><%= it.database %></code></dd>
<dt>Generated</dt><dd><time id="generated" datetime="<%= it.generatedAt %>"><%= it.generatedAt %></time> by mbprobe-results <%= it.toolVersion %></dd>
<dt>Runs</dt><dd id="runs" data-runs="<%= it.runs %>"><%= it.runsText %></dd>
<dt>Paths</dt><dd id="paths" data-paths="<%= it.paths %>"><%= it.pathsText %></dd>
<dt>Tests</dt><dd><%= it.testsText %></dd>
<% if (it.measuredWith !== null) { %><dt>Measured with</dt><dd><%= it.measuredWith %></dd>
<% } %></dl>
<nav><a href="#heatmap">Heatmap</a><a href="#table">Table</a><a href="#drilldown">Drill-down</a></nav>
</header>
<%~ include('@heatmap', it.heatmap) %><%~ include('@table', it.table) %><%~ include('@drilldown', it.drilldown) %><footer><p class="note">Written by mbprobe-results report. Self-contained: no scripts and no network loads; everything is in this file.</p></footer>
</body>
</html>
`;

const heatmap = `<section id="heatmap">
<h2>Heatmap: paths × tests</h2>
<p class="note">One row per path, one column per test and responder port; each cell is the path's latest conclusive verdict (its abbreviation; the whole verdict in its tooltip) and links to its drill-down.</p>
<ul class="legend" id="legend"><% for (const item of it.legend) { %><li><span class="chip v-<%= item.cls %>"></span><%= item.text %></li><% } %></ul>
<% if (it.pathsNote !== null) { %><p class="note truncated" id="heatmap-truncated"><%= it.pathsNote %></p>
<% } %><% if (it.drilldownNote !== null) { %><p class="note truncated"><%= it.drilldownNote %></p>
<% } %><% if (it.columns.length === 0) { %><p class="empty">No results in this database.</p>
<% } else { %><div class="scroll">
<table class="heatmap">
<thead>
<tr><th rowspan="2" class="path-h">Path</th><% for (const block of it.blocks) { %><th class="test-h" colspan="<%= block.ports %>" data-test="<%= block.test %>"><span><% if (block.anchor !== null) { %><a href="#<%= block.anchor %>"><%= block.test %></a><% } else { %><%= block.test %><% } %></span></th><% } %></tr>
<tr><% for (const column of it.columns) { %><th class="port-h" data-test="<%= column.test %>" data-port="<%= column.port %>"><%= column.port %></th><% } %></tr>
</thead>
<tbody>
<% for (const row of it.rows) { %><tr id="<%= row.id %>" data-path="<%= row.path %>" data-path-kind="<%= row.kind %>"><th class="path" scope="row"><%= row.path %></th><% for (const cell of row.cells) { %><td class="cell v-<%= cell.cls %>" data-path="<%= row.path %>" data-test="<%= cell.test %>" data-port="<%= cell.port %>" data-verdict="<%= cell.verdict %>" title="<%= cell.title %>"><% if (cell.anchor !== null) { %><a href="#<%= cell.anchor %>"><%= cell.text %></a><% } else { %><%= cell.text %><% } %></td><% } %></tr>
<% } %></tbody>
</table>
</div>
<% for (const note of it.notes) { %><p class="note"><%= note %></p>
<% } %><% } %></section>
`;

const table = `<section id="table">
<h2>Table: behaviours × ports</h2>
<% if (it.rows.length === 0) { %><p class="empty">No results in this database.</p>
<% } else { %><div class="scroll">
<table class="paper">
<thead>
<tr><th rowspan="2">Test</th><th rowspan="2">Verdict</th><% if (it.groups === null) { %><th colspan="<%= it.ports %>">Port</th><% } else { %><% for (const group of it.groups) { %><th colspan="<%= it.ports %>" data-group="<%= group.name %>"><%= group.name %> <span class="note">(<%= group.paths %>)</span></th><% } %><% } %><% if (it.where !== null) { %><th rowspan="2" class="where-h">Where on the path</th><% } %></tr>
<tr><% for (const port of it.columnPorts) { %><th><%= port %></th><% } %></tr>
</thead>
<tbody>
<% for (const row of it.rows) { %><tr<% if (row.classes !== '') { %> class="<%= row.classes %>"<% } %>><th scope="row"><%= row.test %></th><td><span class="chip v-<%= row.cls %>"></span><%= row.verdict %></td><% for (const cell of row.cells) { %><td class="<%= cell.cls %>" data-test="<%= cell.test %>" data-verdict="<%= cell.verdict %>"<% if (cell.group !== null) { %> data-group="<%= cell.group %>"<% } %> data-port="<%= cell.port %>" data-n="<%= cell.n %>" data-total="<%= cell.total %>"><%= cell.text %></td><% } %><% if (row.where !== null) { %><td class="where" data-test="<%= row.test %>" data-verdict="<%= row.verdict %>"><%= row.where %></td><% } %></tr>
<% } %></tbody>
</table>
</div>
<% if (it.where !== null) { %><p class="note">Where on the path: paths whose localised result (mbprobe-initiator run --locate) places the box there. <%= it.where.note %></p>
<% } %><% if (it.groupedBy !== null) { %><p class="note">Grouped by <%= it.groupedBy %>.</p>
<% } %><% for (const note of it.notes) { %><p class="note"><%= note %></p>
<% } %><% } %></section>
`;

const drilldown = `<section id="drilldown">
<h2>Drill-down</h2>
<p class="note">Per test, the stored result behind each heatmap cell: its run, verdict and detail, and both sides' segments aligned (each segment one side sent, then what the other side received of it, then the field-level diff rows; interference rows in red). The same as mbprobe-results diffs prints.</p>
<% if (it.note !== null) { %><p class="note truncated" id="drilldown-truncated"><%= it.note %></p>
<% } %><% if (it.tests.length === 0) { %><p class="empty">No drill-down sections embedded.</p>
<% } else { %><p>Tests: <% it.tests.forEach((test, i) => { %><% if (i > 0) { %> · <% } %><a href="#<%= test.anchor %>"><%= test.name %></a> (<%= test.sections.length %>)<% }) %></p>
<% for (const test of it.tests) { %><div class="test" id="<%= test.anchor %>" data-test="<%= test.name %>">
<h3><%= test.name %></h3>
<% for (const s of test.sections) { %><%~ include('@section', s) %><% } %></div>
<% } %><% } %></section>
`;

const section = `<section class="drill" id="<%= it.anchor %>" data-path="<%= it.path %>" data-test="<%= it.test %>" data-port="<%= it.port %>" data-verdict="<%= it.verdict %>">
<h4><%= it.path %> · <%= it.test %> on port <%= it.port %>: <span class="verdict v-<%= it.cls %>"><%= it.verdict %></span></h4>
<% if (it.stored === null) { %><p class="note">The stored test is gone from the database.</p>
<% } else { %><dl>
<dt>Run</dt><dd><code><%= it.stored.run %></code><% if (it.stored.label !== null) { %> (label <%= it.stored.label %>)<% } %>, started <%= it.stored.runStartedAt %>, measured with <%= it.stored.toolVersion %></dd>
<dt>Test</dt><dd>#<%= it.stored.seq %> of the run, <%= it.stored.startedAt %> to <%= it.stored.finishedAt %></dd>
<dt>Verdict</dt><dd><%= it.stored.verdict %> (<%= it.stored.meaning %>)</dd>
<% if (it.stored.where !== null) { %><dt>Where on the path</dt><dd class="where"><%= it.stored.where %></dd>
<% } %>
<dt>Same in text</dt><dd><code><%= it.stored.command %></code></dd>
</dl>
<% if (it.stored.detail === null) { %><p class="note">No detail.</p>
<% } else { %><details open><summary>Detail</summary><pre class="detail"><%= it.stored.detail %></pre></details>
<% } %><pre class="segments"><% it.stored.lines.forEach((line, i) => { %><% if (i > 0) { %>
<% } %><% if (line.cls !== null) { %><span class="<%= line.cls %>"><%= line.text %></span><% } %><% }) %></pre>
<p class="back"><a href="#<%= it.back %>">↑ back to <%= it.path %> in the heatmap</a></p>
<% } %></section>
`;

export const TEMPLATES = { document, heatmap, table, drilldown, section };
