import { Duplex } from 'node:stream';

/**
 * Two connected in-memory byte streams: what one writes the other reads. Used for in-process
 * connections with a domain identity (tests, the simulator before it has rings).
 */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      allowHalfOpen: false,
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const other = peer();
        if (!other.destroyed) other.push(chunk);
        cb();
      },
      final(cb) {
        const other = peer();
        if (!other.destroyed) other.push(null);
        cb();
      },
      destroy(err, cb) {
        const other = peer();
        if (!other.destroyed && !other.readableEnded) other.push(null);
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
