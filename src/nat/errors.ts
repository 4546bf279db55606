/**
 * Errors of introductions, hole punching and relaying. The classes live in
 * src/errors.ts with every other peersock error; re-exported here.
 */
export { IntroductionError, NoPathError } from '../errors';
export type { NoPathReason } from '../errors';
