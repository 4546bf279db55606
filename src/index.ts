/**
 * peersock: peer-to-peer QUIC sockets for Node.js. Peers are named by their
 * Ed25519 public keys; one UDP port both listens and dials.
 */
export { PeerSocket } from './peer-socket';
export type { AcceptHook, AddressDialOptions, BindOptions, ConnectOptions, DialTarget, IntroducedDialer, IntroducedTarget, SocketExtension } from './peer-socket';
export type { SocketStats } from './socket-stats';
export type { NativeIoStats } from './native';
export { CHANNEL_APP } from './channels';
export type { ChannelHandler } from './channels';
export { PeerConnection } from './connection';
export type { CloseInfo, CloseOptions, ConnectionStats, MigrateOptions } from './connection';
export { MemorySessionStore } from './sessions';
export type { SessionEntry, SessionStore } from './sessions';
export { PeerReadStream, PeerStream } from './stream';
export type { IncomingStream, StreamOptions } from './stream';
export { UdpTransport } from './transport';
export type { AddressInfo, DatagramHandler, DatagramTransport, UdpTransportOptions } from './transport';
export { keyPair, encodeKey, decodeKey, keysEqual, parseDialString } from './keys';
export type { KeyPair } from './keys';
export * from './errors';
export { Dispatcher } from './messages/dispatcher';
export type { ConversationOptions, DispatcherOptions, DispatcherStats, Handler, Peer, RequestOptions, SendOptions } from './messages/dispatcher';
export { Conversation } from './messages/conversation';
export type { MessageContext } from './messages/conversation';
export type { RawMessage, TypeLike } from './messages/types';
export { CHANNEL_MESSAGES } from './messages/host';
export type { HostDialTarget, MessageHost } from './messages/host';
export { PeerExchange, PEX_PROTOCOL, peerExchange } from './pex/peer-exchange';
export type { PeerExchangeOptions, PeerExchangeStats, PeerInfo, SyncResult } from './pex/peer-exchange';
export * from './nat';
export { Discovery } from './discovery/discovery';
export type { DiscoveryOptions, FindOptions, ResolvedRecord, TopicOptions } from './discovery/discovery';
export type { UpkeepOptions as DiscoveryUpkeepOptions } from './discovery/upkeep';
export type { PeerAddress, PeerRecord } from './discovery/record';
export { topicHash } from './discovery/topic';
export { DhtNode, MAINLINE_BOOTSTRAP } from './discovery/dht';
export type { DhtItem, DhtNodeOptions, DhtNodeStats, DhtQueryOptions } from './discovery/dht';
