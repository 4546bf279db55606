/**
 * The peersock error hierarchy. Every error has a stable `code`; callers branch
 * on `code` or `instanceof`, never on `message`, which may change. The classes
 * live in errors/ by layer (base, connection, protocol) with the conversions
 * (convert); this module is the one place the rest of src/ imports them from.
 */
export { PeersockError, type PeersockErrorOptions } from './errors/base';
export * from './errors/connection';
export * from './errors/protocol';
export * from './errors/discovery';
export * from './errors/lookup';
export { closeError, errorFromCode, errorFromNative, type CloseInfo, type ClosedBy, type NativeErrorContext } from './errors/convert';
