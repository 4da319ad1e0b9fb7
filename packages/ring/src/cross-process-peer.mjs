// The guest side of the two-process ring test (cross-process.test.ts), run by plain `node`.
// It implements its side with @xencons/native's ring functions directly, so the TypeScript rings
// in the parent talk to an independent implementation in another process through a shared
// MAP_SHARED file mapping of a struct xencons_interface page.
//
//   node cross-process-peer.mjs NATIVE_INDEX_JS PAGE_FILE CONFIG_JSON
//
// It produces `out` (CONFIG.outBytes bytes of the CONFIG.outSeed stream), consumes `in`
// (CONFIG.inBytes bytes, checked against the CONFIG.inSeed stream), prints one JSON line with
// byte counts and FNV-1a checksums, and exits 0. It exits 3 when its deadline passes first.

const [nativePath, pagePath, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const { requireNative } = await import(nativePath);
const native = requireNative();

// struct xencons_interface, as in console-layout.ts (kept literal: this file is plain JS).
const IN = { data: 0, size: 1024, cons: 3072, prod: 3076 };
const OUT = { data: 1024, size: 2048, cons: 3080, prod: 3084 };

function stream(length, seed) {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

const page = native.mapFile(pagePath, 0, 4096, true);
const outData = stream(config.outBytes, config.outSeed);
const inData = new Uint8Array(config.inBytes);
const nap = new Int32Array(new SharedArrayBuffer(4));
const deadline = performance.now() + config.deadlineMs;
let chunkState = config.outSeed ^ 0x5bd1e995;
const nextChunk = () => {
  chunkState = (Math.imul(chunkState, 1103515245) + 12345) >>> 0;
  return 1 + ((chunkState >>> 8) % 2048);
};

let sent = 0;
let received = 0;
let idle = 0;
while (sent < outData.length || received < inData.length) {
  let moved = 0;
  if (sent < outData.length) {
    const n = native.ringProduce(
      page,
      OUT.data,
      OUT.size,
      OUT.prod,
      OUT.cons,
      outData,
      sent,
      Math.min(nextChunk(), outData.length - sent),
    );
    if (n < 0) throw new Error('out ring corrupt');
    sent += n;
    moved += n;
  }
  if (received < inData.length) {
    const n = native.ringConsume(
      page,
      IN.data,
      IN.size,
      IN.prod,
      IN.cons,
      inData,
      received,
      Math.min(nextChunk(), inData.length - received),
    );
    if (n < 0) throw new Error('in ring corrupt');
    received += n;
    moved += n;
  }
  if (moved === 0 && ++idle > 64) {
    idle = 0;
    if (performance.now() > deadline) {
      process.stderr.write(`peer: deadline passed with sent=${sent} received=${received}\n`);
      process.exit(3);
    }
    Atomics.wait(nap, 0, 0, 0.05);
  }
}

const expectedIn = stream(config.inBytes, config.inSeed);
let firstMismatch = -1;
for (let i = 0; i < inData.length; i++) {
  if (inData[i] !== expectedIn[i]) {
    firstMismatch = i;
    break;
  }
}
native.unmap(page);
process.stdout.write(
  `${JSON.stringify({
    sent,
    sentChecksum: fnv1a(outData),
    received,
    receivedChecksum: fnv1a(inData),
    firstMismatch,
  })}\n`,
);
