import { isXenconsError } from '@xencons/errors';
import { XsError } from '../wire/errors.js';
import type { XsWriter } from '../wire/message.js';
import { pathProblem } from '../wire/paths.js';
import {
  DirectoryPartReader,
  decodeStrings,
  fromUtf8,
  parseDirectoryReply,
  parseOkReply,
} from '../wire/payload.js';
import { formatAcl, parseAcl, type XsAcl } from '../wire/perms.js';
import { XsType } from '../wire/types.js';

/** Per-request options. */
export interface XsRequestOptions {
  /** Rejects with `ERR_XS_ABORTED` when it fires (the request may still take effect). */
  signal?: AbortSignal;
  /** Milliseconds before rejecting with `ERR_XS_TIMEOUT`; overrides the client default. */
  timeout?: number;
}

/** Builds a request payload into the shared writer (between begin and end). */
export type XsPayloadBuilder = (w: XsWriter) => void;

/** How many times a listing restarts because the directory changed while it was paged. */
const DIRECTORY_PART_RESTARTS = 64;

function checkPath(path: string, allowSpecial = false): void {
  const problem = pathProblem(path, { allowSpecial });
  if (problem !== null) {
    throw new XsError('EINVAL', `invalid xenstore path ${JSON.stringify(path)}: ${problem}`, {
      details: { path },
    });
  }
}

function isErr(err: unknown, code: string): boolean {
  return isXenconsError(err, code);
}

/**
 * The node operations shared by the client and by a transaction (which sends them with its
 * tx_id). Paths are absolute, or relative to the caller's `/local/domain/<domid>`.
 */
export abstract class XsOperations {
  /** Sends one request and resolves with the reply payload (server errors reject as XsError). */
  protected abstract send(
    type: number,
    build: XsPayloadBuilder,
    options?: XsRequestOptions,
  ): Promise<Uint8Array>;

  /** READ: the value bytes. Rejects with `ENOENT` if the node does not exist. */
  async read(path: string, options?: XsRequestOptions): Promise<Uint8Array> {
    checkPath(path);
    return this.send(XsType.READ, (w) => w.string(path), options);
  }

  /** READ decoded as UTF-8. */
  async readString(path: string, options?: XsRequestOptions): Promise<string> {
    return fromUtf8(await this.read(path, options));
  }

  /** READ that resolves `undefined` instead of rejecting when the node does not exist. */
  async readOptional(path: string, options?: XsRequestOptions): Promise<Uint8Array | undefined> {
    try {
      return await this.read(path, options);
    } catch (err) {
      if (isErr(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** {@link readOptional} decoded as UTF-8. */
  async readStringOptional(path: string, options?: XsRequestOptions): Promise<string | undefined> {
    const v = await this.readOptional(path, options);
    return v === undefined ? undefined : fromUtf8(v);
  }

  /** Whether the node exists (a READ that maps ENOENT to false). */
  async exists(path: string, options?: XsRequestOptions): Promise<boolean> {
    return (await this.readOptional(path, options)) !== undefined;
  }

  /** WRITE: creates the node (and missing parents) or replaces its value. Values may contain NUL. */
  async write(path: string, value: Uint8Array | string, options?: XsRequestOptions): Promise<void> {
    checkPath(path);
    parseOkReply(await this.send(XsType.WRITE, (w) => w.string(path).raw(value), options));
  }

  /** MKDIR: creates an empty node and its parents; OK if it exists. */
  async mkdir(path: string, options?: XsRequestOptions): Promise<void> {
    checkPath(path);
    parseOkReply(await this.send(XsType.MKDIR, (w) => w.string(path), options));
  }

  /** RM: removes the node and everything below it. OK when the node is absent but its parent exists. */
  async rm(path: string, options?: XsRequestOptions): Promise<void> {
    checkPath(path);
    parseOkReply(await this.send(XsType.RM, (w) => w.string(path), options));
  }

  /**
   * The names of the node's children. Listings over 4096 bytes (`E2BIG`) are paged with
   * DIRECTORY_PART, restarting when the directory changes meanwhile, as libxenstore does.
   */
  async directory(path: string, options?: XsRequestOptions): Promise<string[]> {
    checkPath(path);
    try {
      return parseDirectoryReply(await this.send(XsType.DIRECTORY, (w) => w.string(path), options));
    } catch (err) {
      if (!isErr(err, 'E2BIG')) throw err;
    }
    const reader = new DirectoryPartReader();
    for (;;) {
      let reply: Uint8Array;
      try {
        const offset = String(reader.offset);
        reply = await this.send(
          XsType.DIRECTORY_PART,
          (w) => w.string(path).string(offset),
          options,
        );
      } catch (err) {
        // A server without DIRECTORY_PART cannot list this directory at all.
        if (isErr(err, 'ENOSYS')) {
          throw new XsError(
            'E2BIG',
            `directory ${path} is too large and the server lacks DIRECTORY_PART`,
            {
              cause: err,
              details: { path },
            },
          );
        }
        throw err;
      }
      const r = reader.push(reply);
      if (Array.isArray(r)) return r;
      if (r === 'restart' && reader.restarts > DIRECTORY_PART_RESTARTS) {
        throw new XsError('EAGAIN', `directory ${path} kept changing while it was listed`, {
          details: { path, restarts: reader.restarts },
        });
      }
    }
  }

  /** The node's permissions as a typed ACL. */
  async getPerms(path: string, options?: XsRequestOptions): Promise<XsAcl> {
    checkPath(path, true);
    const payload = await this.send(XsType.GET_PERMS, (w) => w.string(path), options);
    const strings = decodeStrings(payload);
    const acl = parseAcl(strings);
    if (acl === undefined) {
      throw new XsError(
        'EINVAL',
        `server sent unparsable permissions for ${path}: ${strings.join(' ')}`,
        {
          details: { path, strings },
        },
      );
    }
    return acl;
  }

  /** Replaces the node's permissions (also accepts `['n0', 'r5']` strings). */
  async setPerms(
    path: string,
    acl: XsAcl | readonly string[],
    options?: XsRequestOptions,
  ): Promise<void> {
    checkPath(path, true);
    const strings = Array.isArray(acl) ? (acl as readonly string[]) : formatAcl(acl as XsAcl);
    if (strings.length === 0 || parseAcl(strings) === undefined) {
      throw new XsError('EINVAL', `invalid permissions ${JSON.stringify(strings)}`, {
        details: { path, strings },
      });
    }
    parseOkReply(
      await this.send(
        XsType.SET_PERMS,
        (w) => {
          w.string(path);
          for (const s of strings) w.string(s);
        },
        options,
      ),
    );
  }
}
