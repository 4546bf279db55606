import * as $protobuf from "protobufjs";
import Long = require("long");
/** Namespace peersock. */
export namespace peersock {

    /** Namespace messages. */
    namespace messages {

        /** Properties of an Envelope. */
        interface IEnvelope {

            /** Envelope id */
            id?: (number|null);

            /** Envelope protocol */
            protocol?: (string|null);

            /** Envelope type */
            type?: (string|null);

            /** Envelope inReplyTo */
            inReplyTo?: (number|null);

            /** Envelope inRegardsTo */
            inRegardsTo?: (number|null);

            /** Envelope payload */
            payload?: (Uint8Array|null);

            /** Envelope error */
            error?: (peersock.messages.IRemoteError|null);

            /** Envelope control */
            control?: (peersock.messages.Control|null);

            /** Envelope oneway */
            oneway?: (boolean|null);
        }

        /** Represents an Envelope. */
        class Envelope implements IEnvelope {

            /**
             * Constructs a new Envelope.
             * @param [p] Properties to set
             */
            constructor(p?: peersock.messages.IEnvelope);

            /** Envelope id. */
            public id: number;

            /** Envelope protocol. */
            public protocol: string;

            /** Envelope type. */
            public type: string;

            /** Envelope inReplyTo. */
            public inReplyTo: number;

            /** Envelope inRegardsTo. */
            public inRegardsTo: number;

            /** Envelope payload. */
            public payload: Uint8Array;

            /** Envelope error. */
            public error?: (peersock.messages.IRemoteError|null);

            /** Envelope control. */
            public control: peersock.messages.Control;

            /** Envelope oneway. */
            public oneway: boolean;

            /**
             * Creates a new Envelope instance using the specified properties.
             * @param [properties] Properties to set
             * @returns Envelope instance
             */
            public static create(properties?: peersock.messages.IEnvelope): peersock.messages.Envelope;

            /**
             * Encodes the specified Envelope message. Does not implicitly {@link peersock.messages.Envelope.verify|verify} messages.
             * @param m Envelope message or plain object to encode
             * @param [w] Writer to encode to
             * @returns Writer
             */
            public static encode(m: peersock.messages.IEnvelope, w?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Encodes the specified Envelope message, length delimited. Does not implicitly {@link peersock.messages.Envelope.verify|verify} messages.
             * @param message Envelope message or plain object to encode
             * @param [writer] Writer to encode to
             * @returns Writer
             */
            public static encodeDelimited(message: peersock.messages.IEnvelope, writer?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes an Envelope message from the specified reader or buffer.
             * @param r Reader or buffer to decode from
             * @param [l] Message length if known beforehand
             * @returns Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decode(r: ($protobuf.Reader|Uint8Array), l?: number): peersock.messages.Envelope;

            /**
             * Decodes an Envelope message from the specified reader or buffer, length delimited.
             * @param reader Reader or buffer to decode from
             * @returns Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decodeDelimited(reader: ($protobuf.Reader|Uint8Array)): peersock.messages.Envelope;

            /**
             * Gets the default type url for Envelope
             * @param [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns The default type url
             */
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }

        /** Properties of a RemoteError. */
        interface IRemoteError {

            /** RemoteError code */
            code?: (string|null);

            /** RemoteError message */
            message?: (string|null);
        }

        /** Represents a RemoteError. */
        class RemoteError implements IRemoteError {

            /**
             * Constructs a new RemoteError.
             * @param [p] Properties to set
             */
            constructor(p?: peersock.messages.IRemoteError);

            /** RemoteError code. */
            public code: string;

            /** RemoteError message. */
            public message: string;

            /**
             * Creates a new RemoteError instance using the specified properties.
             * @param [properties] Properties to set
             * @returns RemoteError instance
             */
            public static create(properties?: peersock.messages.IRemoteError): peersock.messages.RemoteError;

            /**
             * Encodes the specified RemoteError message. Does not implicitly {@link peersock.messages.RemoteError.verify|verify} messages.
             * @param m RemoteError message or plain object to encode
             * @param [w] Writer to encode to
             * @returns Writer
             */
            public static encode(m: peersock.messages.IRemoteError, w?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Encodes the specified RemoteError message, length delimited. Does not implicitly {@link peersock.messages.RemoteError.verify|verify} messages.
             * @param message RemoteError message or plain object to encode
             * @param [writer] Writer to encode to
             * @returns Writer
             */
            public static encodeDelimited(message: peersock.messages.IRemoteError, writer?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes a RemoteError message from the specified reader or buffer.
             * @param r Reader or buffer to decode from
             * @param [l] Message length if known beforehand
             * @returns RemoteError
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decode(r: ($protobuf.Reader|Uint8Array), l?: number): peersock.messages.RemoteError;

            /**
             * Decodes a RemoteError message from the specified reader or buffer, length delimited.
             * @param reader Reader or buffer to decode from
             * @returns RemoteError
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decodeDelimited(reader: ($protobuf.Reader|Uint8Array)): peersock.messages.RemoteError;

            /**
             * Gets the default type url for RemoteError
             * @param [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns The default type url
             */
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }

        /** Control enum. */
        enum Control {
            NONE = 0,
            OPEN = 1,
            END = 2
        }
    }
}
