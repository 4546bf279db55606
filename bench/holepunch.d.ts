/**
 * The few parts of udx-native and @hyperswarm/secret-stream (untyped
 * JavaScript packages, devDependencies of the bench only) that bench/udx.ts
 * uses. Both streams are streamx Duplexes: write() returns false past the
 * high-water mark and 'drain' follows; 'data', 'end', 'error' and 'close'
 * as in node:stream.
 */
declare module 'udx-native' {
  import { EventEmitter } from 'node:events';

  namespace UDX {
    interface Address {
      host: string;
      family: number;
      port: number;
    }
    interface Socket extends EventEmitter {
      bind(port?: number, host?: string): void;
      address(): Address;
      close(): Promise<void>;
      setRecvBufferSize(size: number): number;
      setSendBufferSize(size: number): number;
      trySend(buf: Uint8Array, port: number, host?: string): void;
      on(event: 'message', listener: (msg: Buffer, from: Address) => void): this;
      on(event: string, listener: (...args: any[]) => void): this;
    }
    interface StreamOptions {
      /** Packets carry whole 3-byte length-prefixed frames (hyperdht sets this). */
      framed?: boolean;
      /** A packet for this stream before connect(): true drops it. */
      firewall?: (socket: Socket, port: number, host: string) => boolean;
    }
    interface Stream extends EventEmitter {
      readonly id: number;
      connect(socket: Socket, remoteId: number, port: number, host?: string): void;
      destroy(err?: Error): void;
    }
  }

  class UDX {
    createSocket(opts?: { ipv6Only?: boolean; reuseAddress?: boolean }): UDX.Socket;
    createStream(id: number, opts?: UDX.StreamOptions): UDX.Stream;
  }
  export = UDX;
}

declare module '@hyperswarm/secret-stream' {
  import { EventEmitter } from 'node:events';
  import type UDX from 'udx-native';

  namespace SecretStream {
    interface KeyPair {
      publicKey: Buffer;
      secretKey: Buffer;
    }
    /** A Noise handshake done elsewhere (hyperdht: over the DHT), handed to the stream. */
    interface Handshake {
      tx: Buffer;
      rx: Buffer;
      hash: Buffer;
      publicKey: Buffer;
      remotePublicKey: Buffer;
    }
  }

  class SecretStream extends EventEmitter {
    constructor(isInitiator: boolean, rawStream?: UDX.Stream | null, opts?: { handshake?: SecretStream.Handshake; keyPair?: SecretStream.KeyPair });
    static keyPair(seed?: Buffer): SecretStream.KeyPair;
    readonly rawStream: UDX.Stream | null;
    write(data: Uint8Array | string): boolean;
    end(data?: Uint8Array | string): this;
    destroy(err?: Error): void;
    resume(): this;
    readonly destroyed: boolean;
  }
  export = SecretStream;
}

/** secret-stream's own Noise wrapper (noise-handshake with the Ed25519 curve), used in-band by SecretStream. */
declare module '@hyperswarm/secret-stream/lib/handshake' {
  import type SecretStream from '@hyperswarm/secret-stream';

  interface Step {
    /** The next handshake message to send, behind a 3-byte little-endian length; null once done. */
    data: Buffer | null;
    /** Set once the handshake is complete. */
    tx: Buffer | null;
    rx: Buffer | null;
    hash: Buffer | null;
    remotePublicKey: Buffer | null;
  }

  class Handshake {
    constructor(isInitiator: boolean, keyPair: SecretStream.KeyPair, remotePublicKey: Buffer | null, pattern: 'XX' | 'IK');
    /** The first message (initiator); null on failure. */
    send(): Step | null;
    /** Takes a message (no length prefix); returns the reply and/or the keys, null on failure. */
    recv(data: Uint8Array): Step | null;
  }
  export = Handshake;
}
