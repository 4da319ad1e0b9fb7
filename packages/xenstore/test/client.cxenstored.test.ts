import { requirement } from '@xencons/test-utils';
import { clientSuite } from './client-suite.js';
import { cxenstoredMissing, startCxenstored } from './servers.js';

// Debian's C xenstored 4.17 with the fake-xen LD_PRELOAD shim (test/cxenstored/fake-xen.c).
requirement(
  'Debian xen-utils-4.17 (C xenstored), gcc and libxen-dev',
  cxenstoredMissing(),
).describe('client against the C xenstored 4.17', () => clientSuite(() => startCxenstored()));
