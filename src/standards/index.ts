import { gpConnect } from './gp-connect.js';
import { nhsBooking } from './nhs-booking.js';
import type { Standard } from './types.js';

export const STANDARDS: Readonly<Record<Standard['name'], Standard>> = {
  'nhs-booking': nhsBooking,
  'gp-connect': gpConnect,
};

export type { Standard, Interaction, CancelRules } from './types.js';
export { isGuarded, type ChangeSet, type InteractionKind } from './types.js';
