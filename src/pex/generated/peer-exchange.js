/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars*/
"use strict";

var $protobuf = require("protobufjs/minimal");

// Common aliases
var $Reader = $protobuf.Reader, $Writer = $protobuf.Writer, $util = $protobuf.util;

// Exported root namespace
function $toNumber(v) { return typeof v === "number" ? v : v.toNumber(); }

var $root = $protobuf.roots["peersock-pex"] || ($protobuf.roots["peersock-pex"] = {});

$root.peersock = (function() {

    /**
     * Namespace peersock.
     * @exports peersock
     * @namespace
     */
    var peersock = {};

    peersock.pex = (function() {

        /**
         * Namespace pex.
         * @memberof peersock
         * @namespace
         */
        var pex = {};

        pex.Request = (function() {

            /**
             * Properties of a Request.
             * @memberof peersock.pex
             * @interface IRequest
             * @property {number|null} [since] Request since
             * @property {number|null} [epoch] Request epoch
             * @property {number|null} [limit] Request limit
             */

            /**
             * Constructs a new Request.
             * @memberof peersock.pex
             * @classdesc Represents a Request.
             * @implements IRequest
             * @constructor
             * @param {peersock.pex.IRequest=} [p] Properties to set
             */
            function Request(p) {
                if (p)
                    for (var ks = Object.keys(p), i = 0; i < ks.length; ++i)
                        if (p[ks[i]] != null && ks[i] !== "__proto__")
                            this[ks[i]] = p[ks[i]];
            }

            /**
             * Request since.
             * @member {number} since
             * @memberof peersock.pex.Request
             * @instance
             */
            Request.prototype.since = 0;

            /**
             * Request epoch.
             * @member {number} epoch
             * @memberof peersock.pex.Request
             * @instance
             */
            Request.prototype.epoch = 0;

            /**
             * Request limit.
             * @member {number} limit
             * @memberof peersock.pex.Request
             * @instance
             */
            Request.prototype.limit = 0;

            /**
             * Creates a new Request instance using the specified properties.
             * @function create
             * @memberof peersock.pex.Request
             * @static
             * @param {peersock.pex.IRequest=} [properties] Properties to set
             * @returns {peersock.pex.Request} Request instance
             */
            Request.create = function create(properties) {
                return new Request(properties);
            };

            /**
             * Encodes the specified Request message. Does not implicitly {@link peersock.pex.Request.verify|verify} messages.
             * @function encode
             * @memberof peersock.pex.Request
             * @static
             * @param {peersock.pex.IRequest} m Request message or plain object to encode
             * @param {$protobuf.Writer} [w] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Request.encode = function encode(m, w, q) {
                if (!w)
                    w = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (m.since != null && Object.hasOwnProperty.call(m, "since"))
                    w.uint32(8).uint64(m.since);
                if (m.epoch != null && Object.hasOwnProperty.call(m, "epoch"))
                    w.uint32(21).fixed32(m.epoch);
                if (m.limit != null && Object.hasOwnProperty.call(m, "limit"))
                    w.uint32(24).uint32(m.limit);
                return w;
            };

            /**
             * Decodes a Request message from the specified reader or buffer.
             * @function decode
             * @memberof peersock.pex.Request
             * @static
             * @param {$protobuf.Reader|Uint8Array} r Reader or buffer to decode from
             * @param {number} [l] Message length if known beforehand
             * @returns {peersock.pex.Request} Request
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Request.decode = function decode(r, l, e, n) {
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
                m = new $root.peersock.pex.Request();
                while (r.pos < c) {
                    var t = r.uint32();
                    if (t === e)
                        break;
                    switch (t >>> 3) {
                    case 1: {
                            m.since = $toNumber(r.uint64());
                            break;
                        }
                    case 2: {
                            m.epoch = r.fixed32();
                            break;
                        }
                    case 3: {
                            m.limit = r.uint32();
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
             * Gets the default type url for Request
             * @function getTypeUrl
             * @memberof peersock.pex.Request
             * @static
             * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns {string} The default type url
             */
            Request.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                if (typeUrlPrefix === undefined) {
                    typeUrlPrefix = "type.googleapis.com";
                }
                return typeUrlPrefix + "/peersock.pex.Request";
            };

            return Request;
        })();

        pex.Reply = (function() {

            /**
             * Properties of a Reply.
             * @memberof peersock.pex
             * @interface IReply
             * @property {number|null} [epoch] Reply epoch
             * @property {number|null} [seq] Reply seq
             * @property {Array.<peersock.pex.IPeer>|null} [peers] Reply peers
             * @property {boolean|null} [more] Reply more
             */

            /**
             * Constructs a new Reply.
             * @memberof peersock.pex
             * @classdesc Represents a Reply.
             * @implements IReply
             * @constructor
             * @param {peersock.pex.IReply=} [p] Properties to set
             */
            function Reply(p) {
                this.peers = [];
                if (p)
                    for (var ks = Object.keys(p), i = 0; i < ks.length; ++i)
                        if (p[ks[i]] != null && ks[i] !== "__proto__")
                            this[ks[i]] = p[ks[i]];
            }

            /**
             * Reply epoch.
             * @member {number} epoch
             * @memberof peersock.pex.Reply
             * @instance
             */
            Reply.prototype.epoch = 0;

            /**
             * Reply seq.
             * @member {number} seq
             * @memberof peersock.pex.Reply
             * @instance
             */
            Reply.prototype.seq = 0;

            /**
             * Reply peers.
             * @member {Array.<peersock.pex.IPeer>} peers
             * @memberof peersock.pex.Reply
             * @instance
             */
            Reply.prototype.peers = $util.emptyArray;

            /**
             * Reply more.
             * @member {boolean} more
             * @memberof peersock.pex.Reply
             * @instance
             */
            Reply.prototype.more = false;

            /**
             * Creates a new Reply instance using the specified properties.
             * @function create
             * @memberof peersock.pex.Reply
             * @static
             * @param {peersock.pex.IReply=} [properties] Properties to set
             * @returns {peersock.pex.Reply} Reply instance
             */
            Reply.create = function create(properties) {
                return new Reply(properties);
            };

            /**
             * Encodes the specified Reply message. Does not implicitly {@link peersock.pex.Reply.verify|verify} messages.
             * @function encode
             * @memberof peersock.pex.Reply
             * @static
             * @param {peersock.pex.IReply} m Reply message or plain object to encode
             * @param {$protobuf.Writer} [w] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Reply.encode = function encode(m, w, q) {
                if (!w)
                    w = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (m.epoch != null && Object.hasOwnProperty.call(m, "epoch"))
                    w.uint32(13).fixed32(m.epoch);
                if (m.seq != null && Object.hasOwnProperty.call(m, "seq"))
                    w.uint32(16).uint64(m.seq);
                if (m.peers != null && m.peers.length) {
                    for (var i = 0; i < m.peers.length; ++i)
                        $root.peersock.pex.Peer.encode(m.peers[i], w.uint32(26).fork(), q + 1).ldelim();
                }
                if (m.more != null && Object.hasOwnProperty.call(m, "more"))
                    w.uint32(32).bool(m.more);
                return w;
            };

            /**
             * Decodes a Reply message from the specified reader or buffer.
             * @function decode
             * @memberof peersock.pex.Reply
             * @static
             * @param {$protobuf.Reader|Uint8Array} r Reader or buffer to decode from
             * @param {number} [l] Message length if known beforehand
             * @returns {peersock.pex.Reply} Reply
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Reply.decode = function decode(r, l, e, n) {
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
                m = new $root.peersock.pex.Reply();
                while (r.pos < c) {
                    var t = r.uint32();
                    if (t === e)
                        break;
                    switch (t >>> 3) {
                    case 1: {
                            m.epoch = r.fixed32();
                            break;
                        }
                    case 2: {
                            m.seq = $toNumber(r.uint64());
                            break;
                        }
                    case 3: {
                            if (!(m.peers && m.peers.length))
                                m.peers = [];
                            m.peers.push($root.peersock.pex.Peer.decode(r, r.uint32(), undefined, n + 1));
                            break;
                        }
                    case 4: {
                            m.more = r.bool();
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
             * Gets the default type url for Reply
             * @function getTypeUrl
             * @memberof peersock.pex.Reply
             * @static
             * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns {string} The default type url
             */
            Reply.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                if (typeUrlPrefix === undefined) {
                    typeUrlPrefix = "type.googleapis.com";
                }
                return typeUrlPrefix + "/peersock.pex.Reply";
            };

            return Reply;
        })();

        pex.Peer = (function() {

            /**
             * Properties of a Peer.
             * @memberof peersock.pex
             * @interface IPeer
             * @property {Uint8Array|null} [publicKey] Peer publicKey
             * @property {string|null} [address] Peer address
             * @property {number|null} [port] Peer port
             * @property {number|null} [lastSeen] Peer lastSeen
             */

            /**
             * Constructs a new Peer.
             * @memberof peersock.pex
             * @classdesc Represents a Peer.
             * @implements IPeer
             * @constructor
             * @param {peersock.pex.IPeer=} [p] Properties to set
             */
            function Peer(p) {
                if (p)
                    for (var ks = Object.keys(p), i = 0; i < ks.length; ++i)
                        if (p[ks[i]] != null && ks[i] !== "__proto__")
                            this[ks[i]] = p[ks[i]];
            }

            /**
             * Peer publicKey.
             * @member {Uint8Array} publicKey
             * @memberof peersock.pex.Peer
             * @instance
             */
            Peer.prototype.publicKey = $util.newBuffer([]);

            /**
             * Peer address.
             * @member {string} address
             * @memberof peersock.pex.Peer
             * @instance
             */
            Peer.prototype.address = "";

            /**
             * Peer port.
             * @member {number} port
             * @memberof peersock.pex.Peer
             * @instance
             */
            Peer.prototype.port = 0;

            /**
             * Peer lastSeen.
             * @member {number} lastSeen
             * @memberof peersock.pex.Peer
             * @instance
             */
            Peer.prototype.lastSeen = 0;

            /**
             * Creates a new Peer instance using the specified properties.
             * @function create
             * @memberof peersock.pex.Peer
             * @static
             * @param {peersock.pex.IPeer=} [properties] Properties to set
             * @returns {peersock.pex.Peer} Peer instance
             */
            Peer.create = function create(properties) {
                return new Peer(properties);
            };

            /**
             * Encodes the specified Peer message. Does not implicitly {@link peersock.pex.Peer.verify|verify} messages.
             * @function encode
             * @memberof peersock.pex.Peer
             * @static
             * @param {peersock.pex.IPeer} m Peer message or plain object to encode
             * @param {$protobuf.Writer} [w] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Peer.encode = function encode(m, w, q) {
                if (!w)
                    w = $Writer.create();
                if (q === undefined)
                    q = 0;
                if (q > $util.recursionLimit)
                    throw Error("max depth exceeded");
                if (m.publicKey != null && Object.hasOwnProperty.call(m, "publicKey"))
                    w.uint32(10).bytes(m.publicKey);
                if (m.address != null && Object.hasOwnProperty.call(m, "address"))
                    w.uint32(18).string(m.address);
                if (m.port != null && Object.hasOwnProperty.call(m, "port"))
                    w.uint32(24).uint32(m.port);
                if (m.lastSeen != null && Object.hasOwnProperty.call(m, "lastSeen"))
                    w.uint32(32).uint64(m.lastSeen);
                return w;
            };

            /**
             * Decodes a Peer message from the specified reader or buffer.
             * @function decode
             * @memberof peersock.pex.Peer
             * @static
             * @param {$protobuf.Reader|Uint8Array} r Reader or buffer to decode from
             * @param {number} [l] Message length if known beforehand
             * @returns {peersock.pex.Peer} Peer
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Peer.decode = function decode(r, l, e, n) {
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
                m = new $root.peersock.pex.Peer();
                while (r.pos < c) {
                    var t = r.uint32();
                    if (t === e)
                        break;
                    switch (t >>> 3) {
                    case 1: {
                            m.publicKey = r.bytes();
                            break;
                        }
                    case 2: {
                            m.address = r.string();
                            break;
                        }
                    case 3: {
                            m.port = r.uint32();
                            break;
                        }
                    case 4: {
                            m.lastSeen = $toNumber(r.uint64());
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
             * Gets the default type url for Peer
             * @function getTypeUrl
             * @memberof peersock.pex.Peer
             * @static
             * @param {string} [typeUrlPrefix] your custom typeUrlPrefix(default "type.googleapis.com")
             * @returns {string} The default type url
             */
            Peer.getTypeUrl = function getTypeUrl(typeUrlPrefix) {
                if (typeUrlPrefix === undefined) {
                    typeUrlPrefix = "type.googleapis.com";
                }
                return typeUrlPrefix + "/peersock.pex.Peer";
            };

            return Peer;
        })();

        return pex;
    })();

    return peersock;
})();

module.exports = $root;
