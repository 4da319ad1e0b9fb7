import { requirement } from '@xencons/test-utils';
import { clientSuite } from './client-suite.js';
import { oursMissing, startOurXenstored } from './servers.js';

requirement(
  'the reference daemon (packages/xenstored)',
  oursMissing(),
).describe('client against @xencons/xenstored', () => clientSuite(() => startOurXenstored()));
