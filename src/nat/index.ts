/**
 * NAT traversal, as two extensions: observedAddress() (observed addresses, NAT classification) and
 * natTraversal() (introductions with hole punching, and relaying through the introducer).
 */
export { NatObserver, OBSERVE_PROTOCOL, enableObserve, observeAddress, observedAddress } from './observed';
export type { NatObserverStats, ObserveOptions, ObservedAddressOptions } from './observed';
export { classifyNat, classifyObservations } from './classify';
export type { NatClassification, NatType, Observation } from './classify';
export { INTRODUCE_PROTOCOL } from './introduce';
export type { IntroductionStats } from './introduce';
export { isVirtualAddress } from './paths';
export type { PathKind, PathStats } from './paths';
export { NatTraversal, connectionPath, natTraversal, relayStats } from './traversal';
export type { ConnectionPath, NatTraversalOptions } from './traversal';
export type { RelayOptions, RelayStats } from './relay';
export { IntroductionError, NoPathError } from './errors';
export type { NoPathReason } from './errors';
