import test from 'ava';
import { once } from 'node:events';
import { pair, nextStream, sleep } from './helpers';

test('uni explore', async (t) => {
  const { connAB, connBA } = await pair(t);
  const s = connAB.openStream({ unidirectional: true });
  t.log('send side', { readable: s.readable, writable: s.writable, readableEnded: s.readableEnded, uni: s.unidirectional });
  const got = nextStream(connBA);
  s.write('hello');
  const r = await got;
  t.log('recv side', { readable: r.readable, writable: r.writable, writableEnded: r.writableEnded, uni: r.unidirectional });
  const chunks: Buffer[] = [];
  r.on('data', (c) => chunks.push(c));
  s.end(' world');
  await once(r, 'end');
  t.log(Buffer.concat(chunks).toString());
  await sleep(100);
  t.log('after', { sclosed: s.closed, rclosed: r.closed, sfin: s.writableFinished, sdestroyed: s.destroyed, rdestroyed: r.destroyed });
  r.write('x', (err) => t.log('write on recv side cb', err));
  r.on('error', (e) => t.log('r error', e));
  await sleep(50);
  t.pass();
});

test('write right after close()', async (t) => {
  const { connAB, connBA } = await pair(t);
  const s = connAB.openStream();
  s.on('error', (e) => t.log('s error', e.name, (e as any).code));
  s.write('abc');
  void connAB.close();
  s.write('def', (err) => t.log('write cb after close()', err?.name, (err as any)?.code));
  await connAB.closed;
  s.write('ghi', (err) => t.log('write cb after closed', err?.name, (err as any)?.code));
  await sleep(50);
  t.pass();
});

test('reader stops', async (t) => {
  const { connAB, connBA } = await pair(t);
  const s = connAB.openStream();
  const got = nextStream(connBA);
  s.write(Buffer.alloc(1000));
  const r = await got;
  r.on('error', (e) => t.log('r error', e.name, (e as any).code, (e as any).appCode));
  r.destroy(Object.assign(new Error('x'), { appCode: 9 }));
  s.on('error', (e) => t.log('s error', e.name, (e as any).code, (e as any).appCode));
  for (let i = 0; i < 100; i++) {
    const err = await new Promise<Error | null | undefined>((res) => s.write(Buffer.alloc(16384), res));
    if (err) { t.log('write', i, 'failed', err.name, (err as any).code, (err as any).appCode); break; }
    await sleep(5);
  }
  t.pass();
});

test('writer resets bidi', async (t) => {
  const { connAB, connBA } = await pair(t);
  const s = connAB.openStream();
  const got = nextStream(connBA);
  s.write(Buffer.alloc(1000));
  const r = await got;
  r.on('data', () => {});
  r.on('error', (e) => t.log('r error', e.name, (e as any).code, (e as any).appCode));
  s.on('error', (e) => t.log('s error', e.name, (e as any).code, (e as any).appCode));
  await sleep(20);
  s.destroy(Object.assign(new Error('x'), { appCode: 7 }));
  await sleep(100);
  t.pass();
});
