/** The control path: a plain IP router. */
import type { LabProfile } from '../profile.js';

export const routerProfiles = (): LabProfile[] => [
  {
    name: 'clean',
    description: 'A plain IP router: forwards both directions and changes nothing (the control path).',
    setup: () => [],
  },
];
