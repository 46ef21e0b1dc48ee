/**
 * The report's template engine: Eta (https://eta.js.org), with every `<%= %>` escaped. The escape
 * is Eta's (& < > " ' as entities) plus what HTML does not allow at all: control characters become
 * U+FFFD. Raw output (`<%~ %>`) is for including another template and for the constant style sheet
 * only; test/unit/report.test.ts holds every template to that.
 */
import { Eta } from 'eta';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or attribute value as HTML: the five special characters escaped, control characters (not allowed in HTML) replaced. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\uFFFD');
}

/** An engine holding `templates` (name -> template text), each included by name from the others. */
export function templateEngine(templates: Record<string, string>): Eta {
  const eta = new Eta({ autoEscape: true, escapeFunction: escapeHtml, autoTrim: false, cache: true, useWith: false, varName: 'it' });
  for (const [name, text] of Object.entries(templates)) eta.loadTemplate(`@${name}`, text);
  return eta;
}
