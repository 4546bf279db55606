import * as $protobuf from "protobufjs";
import Long = require("long");
/** Namespace peersock. */
export namespace peersock {

    /** Namespace pex. */
    namespace pex {

        /** Properties of a Request. */
        interface IRequest {

            /** Request since */
            since?: (number|null);

            /** Request epoch */
            epoch?: (number|null);

            /** Request limit */
            limit?: (number|null);
        }

        /** Represents a Request. */
        class Request implements IRequest {

            /**
             * Constructs a new Request.
             * @param [p] Properties to set
             */
            constructor(p?: peersock.pex.IRequest);

            /** Request since. */
            public since: number;

            /** Request epoch. */
            public epoch: number;

            /** Request limit. */
            public limit: number;

            /**
             * Creates a new Request instance using the specified properties.
             * @param [properties] Properties to set
             * @returns Request instance
             */
            public static create(properties?: peersock.pex.IRequest): peersock.pex.Request;

            /**
             * Encodes the specified Request message. Does not implicitly {@link peersock.pex.Request.verify|verify} messages.
             * @param m Request message or plain object to encode
             * @param [w] Writer to encode to
             * @returns Writer
             */
            public static encode(m: peersock.pex.IRequest, w?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes a Request message from the specified reader or buffer.
             * @param r Reader or buffer to decode from
             * @param [l] Message length if known beforehand
             * @returns Request
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decode(r: ($protobuf.Reader|Uint8Array), l?: number): peersock.pex.Request;

            /**
             * Gets the default type url for Request
             * @param [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns The default type url
             */
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }

        /** Properties of a Reply. */
        interface IReply {

            /** Reply epoch */
            epoch?: (number|null);

            /** Reply seq */
            seq?: (number|null);

            /** Reply peers */
            peers?: (peersock.pex.IPeer[]|null);

            /** Reply more */
            more?: (boolean|null);
        }

        /** Represents a Reply. */
        class Reply implements IReply {

            /**
             * Constructs a new Reply.
             * @param [p] Properties to set
             */
            constructor(p?: peersock.pex.IReply);

            /** Reply epoch. */
            public epoch: number;

            /** Reply seq. */
            public seq: number;

            /** Reply peers. */
            public peers: peersock.pex.IPeer[];

            /** Reply more. */
            public more: boolean;

            /**
             * Creates a new Reply instance using the specified properties.
             * @param [properties] Properties to set
             * @returns Reply instance
             */
            public static create(properties?: peersock.pex.IReply): peersock.pex.Reply;

            /**
             * Encodes the specified Reply message. Does not implicitly {@link peersock.pex.Reply.verify|verify} messages.
             * @param m Reply message or plain object to encode
             * @param [w] Writer to encode to
             * @returns Writer
             */
            public static encode(m: peersock.pex.IReply, w?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes a Reply message from the specified reader or buffer.
             * @param r Reader or buffer to decode from
             * @param [l] Message length if known beforehand
             * @returns Reply
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decode(r: ($protobuf.Reader|Uint8Array), l?: number): peersock.pex.Reply;

            /**
             * Gets the default type url for Reply
             * @param [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns The default type url
             */
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }

        /** Properties of a Peer. */
        interface IPeer {

            /** Peer publicKey */
            publicKey?: (Uint8Array|null);

            /** Peer address */
            address?: (string|null);

            /** Peer port */
            port?: (number|null);

            /** Peer lastSeen */
            lastSeen?: (number|null);
        }

        /** Represents a Peer. */
        class Peer implements IPeer {

            /**
             * Constructs a new Peer.
             * @param [p] Properties to set
             */
            constructor(p?: peersock.pex.IPeer);

            /** Peer publicKey. */
            public publicKey: Uint8Array;

            /** Peer address. */
            public address: string;

            /** Peer port. */
            public port: number;

            /** Peer lastSeen. */
            public lastSeen: number;

            /**
             * Creates a new Peer instance using the specified properties.
             * @param [properties] Properties to set
             * @returns Peer instance
             */
            public static create(properties?: peersock.pex.IPeer): peersock.pex.Peer;

            /**
             * Encodes the specified Peer message. Does not implicitly {@link peersock.pex.Peer.verify|verify} messages.
             * @param m Peer message or plain object to encode
             * @param [w] Writer to encode to
             * @returns Writer
             */
            public static encode(m: peersock.pex.IPeer, w?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes a Peer message from the specified reader or buffer.
             * @param r Reader or buffer to decode from
             * @param [l] Message length if known beforehand
             * @returns Peer
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            public static decode(r: ($protobuf.Reader|Uint8Array), l?: number): peersock.pex.Peer;

            /**
             * Gets the default type url for Peer
             * @param [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns The default type url
             */
            public static getTypeUrl(typeUrlPrefix?: string): string;
        }
    }
}
