#!/usr/bin/env node
/**
 * The `peersock` command-line tool (package `bin`): keygen, listen, connect,
 * send, receive, demo and bench. Run `peersock --help`; the commands live in
 * src/cli/ and use only the public API.
 */
import { main } from './cli/main';

main(process.argv.slice(2));
