import { isXenconsError, XenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { backendError, EvtchnCode, EvtchnError, notBound } from './evtchn-errors.js';

const errno = (code: string) => Object.assign(new Error(`${code}: failed`), { code });

describe('evtchn errors', () => {
  it.each([
    ['EINVAL', EvtchnCode.BAD_PORT],
    ['ESRCH', EvtchnCode.NO_DOMAIN],
    ['ENOENT', EvtchnCode.NO_DOMAIN],
    ['EPERM', EvtchnCode.DENIED],
    ['EACCES', EvtchnCode.DENIED],
    ['ENOSPC', EvtchnCode.NO_SPACE],
    ['ENOTCONN', EvtchnCode.NOT_BOUND],
    ['ECONNRESET', EvtchnCode.CLOSED],
    ['EIO', EvtchnCode.BACKEND],
  ])('maps %s from either backend to %s, keeping the errno and the cause', (from, to) => {
    const cause = errno(from);
    const err = backendError('bindInterdomain(1, 5)', cause, { remoteDomid: 1 });
    expect(err).toBeInstanceOf(EvtchnError);
    expect(err).toBeInstanceOf(XenconsError);
    expect(isXenconsError(err, to)).toBe(true);
    expect(err.cause).toBe(cause);
    expect(err.details).toMatchObject({ errno: from, remoteDomid: 1 });
  });

  it('passes an EvtchnError through and names the port of a misuse', () => {
    const misuse = notBound('notify', 7);
    expect(backendError('x', misuse)).toBe(misuse);
    expect(misuse.code).toBe('ERR_EVTCHN_NOT_BOUND');
    expect(misuse.message).toContain('port 7');
    expect(backendError('x', 'weird').code).toBe(EvtchnCode.BACKEND);
  });
});
