// Runs in the test guest under the host's node binary: proves node starts there, can import a
// module from the payload disk, and computes something; prints one line for dom0 to find.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const nonce = process.argv[2] ?? 'none';
const self = readFileSync(new URL(import.meta.url));
const digest = createHash('sha256').update(nonce).digest('hex').slice(0, 12);
console.log(
  `XQ-GUEST-NODE ok node=${process.version} nonce=${nonce} sha=${digest} self=${self.length}B`,
);
