/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars*/
"use strict";

var $protobuf = require("protobufjs/minimal");

// Common aliases
var $Reader = $protobuf.Reader, $Writer = $protobuf.Writer, $util = $protobuf.util;

// Exported root namespace
function $toNumber(v) { return typeof v === "number" ? v : v.toNumber(); }

var $root = $protobuf.roots["default"] || ($protobuf.roots["default"] = {});

$root.peersock = (function() {

    /**
     * Namespace peersock.
     * @exports peersock
     * @namespace
     */
    var peersock = {};

    peersock.messages = (function() {

        /**
         * Namespace messages.
         * @memberof peersock
         * @namespace
         */
        var messages = {};

        messages.Envelope = (function() {

            /**
             * Properties of an Envelope.
             * @memberof peersock.messages
             * @interface IEnvelope
             * @property {number|null} [id] Envelope id
             * @property {string|null} [protocol] Envelope protocol
             * @property {string|null} [type] Envelope type
             * @property {number|null} [inReplyTo] Envelope inReplyTo
             * @property {number|null} [inRegardsTo] Envelope inRegardsTo
             * @property {Uint8Array|null} [payload] Envelope payload
             * @property {peersock.messages.IRemoteError|null} [error] Envelope error
             * @property {peersock.messages.Control|null} [control] Envelope control
             * @property {boolean|null} [oneway] Envelope oneway
             */

            /**
             * Constructs a new Envelope.
             * @memberof peersock.messages
             * @classdesc Represents an Envelope.
             * @implements IEnvelope
             * @constructor
             * @param {peersock.messages.IEnvelope=} [p] Properties to set
             */
            function Envelope(p) {
                if (p)
                    for (var ks = Object.keys(p), i = 0; i < ks.length; ++i)
                        if (p[ks[i]] != null && ks[i] !== "__proto__")
                            this[ks[i]] = p[ks[i]];
            }

            /**
             * Envelope id.
             * @member {number} id
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.id = 0;

            /**
             * Envelope protocol.
             * @member {string} protocol
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.protocol = "";

            /**
             * Envelope type.
             * @member {string} type
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.type = "";

            /**
             * Envelope inReplyTo.
             * @member {number} inReplyTo
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.inReplyTo = 0;

            /**
             * Envelope inRegardsTo.
             * @member {number} inRegardsTo
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.inRegardsTo = 0;

            /**
             * Envelope payload.
             * @member {Uint8Array} payload
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.payload = $util.newBuffer([]);

            /**
             * Envelope error.
             * @member {peersock.messages.IRemoteError|null|undefined} error
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.error = null;

            /**
             * Envelope control.
             * @member {peersock.messages.Control} control
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.control = 0;

            /**
             * Envelope oneway.
             * @member {boolean} oneway
             * @memberof peersock.messages.Envelope
             * @instance
             */
            Envelope.prototype.oneway = false;

            /**
             * Creates a new Envelope instance using the specified properties.
             * @function create
             * @memberof peersock.messages.Envelope
             * @static
             * @param {peersock.messages.IEnvelope=} [properties] Properties to set
             * @returns {peersock.messages.Envelope} Envelope instance
             */
            Envelope.create = function create(properties) {
                return new Envelope(properties);
            };

            /**
             * Encodes the specified Envelope message. Does not implicitly {@link peersock.messages.Envelope.verify|verify} messages.
             * @function encode
             * @memberof peersock.messages.Envelope
             * @static
             * @param {peersock.messages.IEnvelope} m Envelope message or plain object to encode
             * @param {$protobuf.Writer} [w] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Envelope.encode = function encode(m, w, q) {
                if (!w)
                    w = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (m.id != null && Object.hasOwnProperty.call(m, "id"))
                    w.uint32(8).uint64(m.id);
                if (m.protocol != null && Object.hasOwnProperty.call(m, "protocol"))
                    w.uint32(18).string(m.protocol);
                if (m.type != null && Object.hasOwnProperty.call(m, "type"))
                    w.uint32(26).string(m.type);
                if (m.inReplyTo != null && Object.hasOwnProperty.call(m, "inReplyTo"))
                    w.uint32(32).uint64(m.inReplyTo);
                if (m.inRegardsTo != null && Object.hasOwnProperty.call(m, "inRegardsTo"))
                    w.uint32(40).uint64(m.inRegardsTo);
                if (m.payload != null && Object.hasOwnProperty.call(m, "payload"))
                    w.uint32(50).bytes(m.payload);
                if (m.error != null && Object.hasOwnProperty.call(m, "error"))
                    $root.peersock.messages.RemoteError.encode(m.error, w.uint32(58).fork(), q + 1).ldelim();
                if (m.control != null && Object.hasOwnProperty.call(m, "control"))
                    w.uint32(64).int32(m.control);
                if (m.oneway != null && Object.hasOwnProperty.call(m, "oneway"))
                    w.uint32(72).bool(m.oneway);
                return w;
            };

            /**
             * Encodes the specified Envelope message, length delimited. Does not implicitly {@link peersock.messages.Envelope.verify|verify} messages.
             * @function encodeDelimited
             * @memberof peersock.messages.Envelope
             * @static
             * @param {peersock.messages.IEnvelope} message Envelope message or plain object to encode
             * @param {$protobuf.Writer} [writer] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Envelope.encodeDelimited = function encodeDelimited(message, writer) {
                return this.encode(message, writer && writer.len ? writer.fork() : writer).ldelim();
            };

            /**
             * Decodes an Envelope message from the specified reader or buffer.
             * @function decode
             * @memberof peersock.messages.Envelope
             * @static
             * @param {$protobuf.Reader|Uint8Array} r Reader or buffer to decode from
             * @param {number} [l] Message length if known beforehand
             * @returns {peersock.messages.Envelope} Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Envelope.decode = function decode(r, l, e, n) {
                if (!(r instanceof $Reader))
                    r = $Reader.create(r);
                if (n === undefined)
                    n = 0;
                if (n > $Reader.recursionLimit)
                    throw Error("maximum nesting depth exceeded");
                var c, m;
                if (l === undefined)
                    c = r.len;
                else {
                    c = r.pos + l;
                    if (c > r.len)
                        throw RangeError("index out of range");
                    l = r.len;
                    r.len = c;
                }
                m = new $root.peersock.messages.Envelope();
                while (r.pos < c) {
                    var t = r.uint32();
                    if (t === e)
                        break;
                    switch (t >>> 3) {
                    case 1: {
                            m.id = $toNumber(r.uint64());
                            break;
                        }
                    case 2: {
                            m.protocol = r.string();
                            break;
                        }
                    case 3: {
                            m.type = r.string();
                            break;
                        }
                    case 4: {
                            m.inReplyTo = $toNumber(r.uint64());
                            break;
                        }
                    case 5: {
                            m.inRegardsTo = $toNumber(r.uint64());
                            break;
                        }
                    case 6: {
                            m.payload = r.bytes();
                            break;
                        }
                    case 7: {
                            m.error = $root.peersock.messages.RemoteError.decode(r, r.uint32(), undefined, n + 1);
                            break;
                        }
                    case 8: {
                            m.control = r.int32();
                            break;
                        }
                    case 9: {
                            m.oneway = r.bool();
                            break;
                        }
                    default:
                        r.skipType(t & 7, n);
                        break;
                    }
                }
                if (l !== undefined) {
                    if (r.pos !== c)
                        throw RangeError("index out of range");
                    r.len = l;
                }
                return m;
            };

            /**
             * Decodes an Envelope message from the specified reader or buffer, length delimited.
             * @function decodeDelimited
             * @memberof peersock.messages.Envelope
             * @static
             * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
             * @returns {peersock.messages.Envelope} Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Envelope.decodeDelimited = function decodeDelimited(reader) {
                if (!(reader instanceof $Reader))
                    reader = new $Reader(reader);
                return this.decode(reader, reader.uint32());
            };

            /**
             * Gets the default type url for Envelope
             * @function getTypeUrl
             * @memberof peersock.messages.Envelope
             * @static
             * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns {string} The default type url
             */
            Envelope.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                if (typeUrlPrefix === undefined) {
                    typeUrlPrefix = "type.googleapis.com";
                }
                return typeUrlPrefix + "/peersock.messages.Envelope";
            };

            return Envelope;
        })();

        messages.RemoteError = (function() {

            /**
             * Properties of a RemoteError.
             * @memberof peersock.messages
             * @interface IRemoteError
             * @property {string|null} [code] RemoteError code
             * @property {string|null} [message] RemoteError message
             */

            /**
             * Constructs a new RemoteError.
             * @memberof peersock.messages
             * @classdesc Represents a RemoteError.
             * @implements IRemoteError
             * @constructor
             * @param {peersock.messages.IRemoteError=} [p] Properties to set
             */
            function RemoteError(p) {
                if (p)
                    for (var ks = Object.keys(p), i = 0; i < ks.length; ++i)
                        if (p[ks[i]] != null && ks[i] !== "__proto__")
                            this[ks[i]] = p[ks[i]];
            }

            /**
             * RemoteError code.
             * @member {string} code
             * @memberof peersock.messages.RemoteError
             * @instance
             */
            RemoteError.prototype.code = "";

            /**
             * RemoteError message.
             * @member {string} message
             * @memberof peersock.messages.RemoteError
             * @instance
             */
            RemoteError.prototype.message = "";

            /**
             * Creates a new RemoteError instance using the specified properties.
             * @function create
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {peersock.messages.IRemoteError=} [properties] Properties to set
             * @returns {peersock.messages.RemoteError} RemoteError instance
             */
            RemoteError.create = function create(properties) {
                return new RemoteError(properties);
            };

            /**
             * Encodes the specified RemoteError message. Does not implicitly {@link peersock.messages.RemoteError.verify|verify} messages.
             * @function encode
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {peersock.messages.IRemoteError} m RemoteError message or plain object to encode
             * @param {$protobuf.Writer} [w] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            RemoteError.encode = function encode(m, w, q) {
                if (!w)
                    w = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (m.code != null && Object.hasOwnProperty.call(m, "code"))
                    w.uint32(10).string(m.code);
                if (m.message != null && Object.hasOwnProperty.call(m, "message"))
                    w.uint32(18).string(m.message);
                return w;
            };

            /**
             * Encodes the specified RemoteError message, length delimited. Does not implicitly {@link peersock.messages.RemoteError.verify|verify} messages.
             * @function encodeDelimited
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {peersock.messages.IRemoteError} message RemoteError message or plain object to encode
             * @param {$protobuf.Writer} [writer] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            RemoteError.encodeDelimited = function encodeDelimited(message, writer) {
                return this.encode(message, writer && writer.len ? writer.fork() : writer).ldelim();
            };

            /**
             * Decodes a RemoteError message from the specified reader or buffer.
             * @function decode
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {$protobuf.Reader|Uint8Array} r Reader or buffer to decode from
             * @param {number} [l] Message length if known beforehand
             * @returns {peersock.messages.RemoteError} RemoteError
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            RemoteError.decode = function decode(r, l, e, n) {
                if (!(r instanceof $Reader))
                    r = $Reader.create(r);
                if (n === undefined)
                    n = 0;
                if (n > $Reader.recursionLimit)
                    throw Error("maximum nesting depth exceeded");
                var c, m;
                if (l === undefined)
                    c = r.len;
                else {
                    c = r.pos + l;
                    if (c > r.len)
                        throw RangeError("index out of range");
                    l = r.len;
                    r.len = c;
                }
                m = new $root.peersock.messages.RemoteError();
                while (r.pos < c) {
                    var t = r.uint32();
                    if (t === e)
                        break;
                    switch (t >>> 3) {
                    case 1: {
                            m.code = r.string();
                            break;
                        }
                    case 2: {
                            m.message = r.string();
                            break;
                        }
                    default:
                        r.skipType(t & 7, n);
                        break;
                    }
                }
                if (l !== undefined) {
                    if (r.pos !== c)
                        throw RangeError("index out of range");
                    r.len = l;
                }
                return m;
            };

            /**
             * Decodes a RemoteError message from the specified reader or buffer, length delimited.
             * @function decodeDelimited
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
             * @returns {peersock.messages.RemoteError} RemoteError
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            RemoteError.decodeDelimited = function decodeDelimited(reader) {
                if (!(reader instanceof $Reader))
                    reader = new $Reader(reader);
                return this.decode(reader, reader.uint32());
            };

            /**
             * Gets the default type url for RemoteError
             * @function getTypeUrl
             * @memberof peersock.messages.RemoteError
             * @static
             * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns {string} The default type url
             */
            RemoteError.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                if (typeUrlPrefix === undefined) {
                    typeUrlPrefix = "type.googleapis.com";
                }
                return typeUrlPrefix + "/peersock.messages.RemoteError";
            };

            return RemoteError;
        })();

        /**
         * Control enum.
         * @name peersock.messages.Control
         * @enum {number}
         * @property {number} NONE=0 NONE value
         * @property {number} OPEN=1 OPEN value
         * @property {number} END=2 END value
         */
        messages.Control = (function() {
            var valuesById = {}, values = Object.create(valuesById);
            values[valuesById[0] = "NONE"] = 0;
            values[valuesById[1] = "OPEN"] = 1;
            values[valuesById[2] = "END"] = 2;
            return values;
        })();

        return messages;
    })();

    return peersock;
})();

module.exports = $root;
