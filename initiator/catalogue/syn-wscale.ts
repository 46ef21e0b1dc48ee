import { windowScale } from '../../shared/wire/tcp-options.js';
import { synOptionTest } from './syn-option.js';

export const synWscale = synOptionTest('syn-wscale', 'a SYN with window scale 7 (option 3), besides MSS, SACK-permitted and timestamps', () => windowScale(7));
