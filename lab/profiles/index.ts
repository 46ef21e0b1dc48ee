/**
 * Every lab profile, by name, in the order `scripts/lab list` shows them. A profile family is one
 * module of this folder returning its profiles; a new profile is a copy of one entry of a family
 * (or a copy of a family module, added here).
 */
import type { LabProfile } from '../profile.js';
import { firewallProfiles } from './firewall.js';
import { interceptionProfiles } from './interception.js';
import { markingProfiles } from './marking.js';
import { natProfiles } from './nat.js';
import { optionProfiles } from './options.js';
import { relayProfiles } from './relay.js';
import { rewriterProfiles } from './rewriter.js';
import { routerProfiles } from './router.js';

export const PROFILES: Readonly<Record<string, LabProfile>> = Object.freeze(Object.fromEntries(
  [
    ...routerProfiles(),
    ...natProfiles(),
    ...optionProfiles(),
    ...firewallProfiles(),
    ...markingProfiles(),
    ...relayProfiles(),
    ...interceptionProfiles(),
    ...rewriterProfiles(),
  ].map((p) => [p.name, p]),
));
