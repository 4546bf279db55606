import test from 'ava';
import protobuf from 'protobufjs';
import { createHash } from 'node:crypto';
import { Dispatcher } from '../src/index';
import { pair } from './helpers';

const root = protobuf.parse(`syntax = "proto3"; package test; message Ping { uint32 n = 1; } message Pong { uint32 n = 1; }`).root;
const Ping = root.lookupType('test.Ping');
const Pong = root.lookupType('test.Pong');

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!; };

test('probe', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'p' });
  const client = new Dispatcher(b, { protocol: 'p' });
  server.handle(Ping, (m: { n: number }) => Pong.create({ n: m.n }));
  let bigAt = 0;
  let bigInfo = '';
  server.handle('big', (bytes: Uint8Array) => { bigAt = performance.now(); bigInfo = `${bytes.length} ${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}`; });
  const idle: number[] = [];
  for (let i = 0; i < 200; i++) { const s = performance.now(); await client.request(connAB, Ping.create({ n: i }), { reply: Pong }); idle.push(performance.now() - s); }
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const h = monitorEventLoopDelay({ resolution: 1 }); const st0 = connAB.stats();
  const big = new Uint8Array(16 * 1024 * 1024); h.enable();
  const t0 = performance.now();
  const sent = client.send(connAB, big, { type: 'big' });
  let sentAt = 0; void sent.then(() => { sentAt = performance.now(); });
  const busy: number[] = []; let during = 0;
  for (let i = 0; i < 1000; i++) { const s = performance.now(); await client.request(connAB, Ping.create({ n: i }), { reply: Pong }); const e = performance.now(); busy.push(e - s); if (bigAt === 0) during++; }
  while (bigAt === 0) await new Promise((r) => setTimeout(r, 5));
  h.disable(); const st1 = connAB.stats(); t.log(`loop delay max ${(h.max/1e6).toFixed(1)} ms p50 ${(h.percentile(50)/1e6).toFixed(1)}; lost ${st1.lostPackets - st0.lostPackets} sent ${st1.sentPackets - st0.sentPackets} cwnd ${st1.cwnd} rtt ${st1.rttMs}`);
  t.log(`idle p50 ${pct(idle, 50).toFixed(3)} p99 ${pct(idle, 99).toFixed(3)}; busy p50 ${pct(busy, 50).toFixed(3)} p99 ${pct(busy, 99).toFixed(3)} max ${Math.max(...busy).toFixed(3)}; during ${during}; big ${(bigAt - t0).toFixed(1)} ms sent ${(sentAt - t0).toFixed(1)} ${bigInfo}`);
  t.log(busy.slice(0, 30).map((x) => x.toFixed(2)).join(' '));
  t.pass();
});
