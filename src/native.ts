/**
 * The only importer of the generated napi loader. Everything native crosses
 * here; callers convert thrown errors with `errorFromNative`.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
import binding = require('../native/binding.js');

export type NativeEndpoint = binding.NativeEndpoint;
export type NativeEvent = binding.NativeEvent;
export type NativeOptions = binding.NativeOptions;
export type NativeConnInfo = binding.NativeConnInfo;
export type NativeStats = binding.NativeStats;

/** Creates the native endpoint for one socket. */
export function createNativeEndpoint(
  secretKey: Uint8Array,
  address: string,
  port: number,
  options: NativeOptions,
): NativeEndpoint {
  return new binding.NativeEndpoint(secretKey, address, port, options);
}
