/** Protobuf types shared by the dispatch-layer tests (reflected, from a .proto text). */
import protobuf from 'protobufjs';

const root = protobuf.parse(`
  syntax = "proto3";
  package test;
  message Ping { uint32 n = 1; string text = 2; }
  message Pong { uint32 n = 1; string text = 2; }
  message Note { string text = 1; bytes blob = 2; }
  message Sync { uint32 step = 1; }
`).root;
export const Ping = root.lookupType('test.Ping');
export const Pong = root.lookupType('test.Pong');
export const Note = root.lookupType('test.Note');
export const Sync = root.lookupType('test.Sync');

/** Decoded Ping / Pong. */
export interface PingMsg {
  n: number;
  text: string;
}
