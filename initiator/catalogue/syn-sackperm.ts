import { sackPermitted } from '../../shared/wire/tcp-options.js';
import { synOptionTest } from './syn-option.js';

export const synSackperm = synOptionTest('syn-sackperm', 'a SYN with SACK-permitted (option 4), besides MSS, timestamps and window scale', () => sackPermitted());
