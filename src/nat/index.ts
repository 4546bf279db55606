/**
 * NAT traversal: observed addresses and NAT classification (more to come:
 * introductions, hole punching, relaying).
 */
export { NatObserver, OBSERVE_PROTOCOL, enableObserve, observeAddress } from './observed';
export type { NatObserverStats, ObserveOptions } from './observed';
export { classifyNat, classifyObservations } from './classify';
export type { NatClassification, NatType, Observation } from './classify';
