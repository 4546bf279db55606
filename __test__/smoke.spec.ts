import test from 'ava';
import { Source, echo, pair, readAll, writeAll, within } from './helpers';

test('smoke 64MiB echo', async (t) => {
  const { connAB, connBA } = await pair(t);
  echo(connBA);
  const s = connAB.openStream();
  const t0 = Date.now();
  const [w, r] = await within(60000, 'echo', Promise.all([writeAll(s, new Source(64 * 1024 * 1024)), readAll(s)]));
  t.log(Date.now() - t0, 'ms');
  t.deepEqual(r, w);
});
