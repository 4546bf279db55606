/**
 * A Dispatcher's known message types: how it encodes what it sends and
 * decodes what it receives (a type it was not given arrives as raw bytes,
 * never mis-decoded).
 */
import { InvalidArgumentError } from '../errors';
import { DecodeError, MessageTooLargeError } from './errors';
import { codecOf, typeOfMessage, type Codec, type RawMessage, type TypeLike } from './types';

/** Codecs by type name, and the size limit of encoded messages. */
export class TypeRegistry {
  readonly #types = new Map<string, Codec>();

  /** `onDecodeError` counts payloads that fail to decode. */
  constructor(
    private readonly maxMessageSize: number,
    private readonly onDecodeError: () => void,
  ) {}

  /** Makes `type` known by its name; returns its codec. */
  add(type: TypeLike): Codec {
    return this.keep(codecOf(type));
  }

  /** Makes `codec` the one of its name. */
  keep(codec: Codec): Codec {
    if (this.#types.get(codec.name) !== codec) this.#types.set(codec.name, codec);
    return codec;
  }

  /** Encodes a message; its type from the message, or `type` for raw bytes. */
  encode(msg: unknown, type?: string): { type: string; payload: Uint8Array } {
    let codec: Codec;
    if (type !== undefined) {
      let known = this.#types.get(type);
      if (known === undefined) {
        known = codecOf(type);
        this.#types.set(type, known);
      }
      codec = known;
    } else {
      const t = typeOfMessage(msg);
      if (t === undefined) throw new InvalidArgumentError('cannot tell the message type: pass a protobufjs message, or bytes with { type }');
      codec = codecOf(t);
    }
    const payload = codec.encode(msg);
    if (payload.length > this.maxMessageSize) {
      throw new MessageTooLargeError(`message of ${payload.length} bytes exceeds maxMessageSize ${this.maxMessageSize}`, { size: payload.length, limit: this.maxMessageSize });
    }
    return { type: codec.name, payload };
  }

  /** Decodes with the known type of that name, or hands back raw bytes. */
  decode(type: string, payload: Uint8Array): unknown {
    const codec = this.#types.get(type);
    if (codec === undefined) return { type, bytes: payload } satisfies RawMessage;
    try {
      return codec.decode(payload);
    } catch (e) {
      this.onDecodeError();
      throw new DecodeError(`payload is not a valid ${type}`, { cause: e });
    }
  }
}
