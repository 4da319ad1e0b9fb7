import { parseOkReply } from '../wire/payload.js';
import { XsType } from '../wire/types.js';
import { clientError } from './errors.js';
import { XsOperations, type XsPayloadBuilder, type XsRequestOptions } from './operations.js';

/** Sends one request with a tx_id (provided by the client). */
export type XsTxSender = (
  type: number,
  txId: number,
  build: XsPayloadBuilder,
  options?: XsRequestOptions,
) => Promise<Uint8Array>;

/**
 * An open transaction: the node operations of the client, seen through the transaction's private
 * view. End it with `commit()` (rejects with `EAGAIN` on a conflict: run it again) or `abort()`.
 */
export class XsTransaction extends XsOperations {
  /** The tx_id the server assigned. */
  readonly id: number;
  #finished = false;
  readonly #sender: XsTxSender;

  /** @internal Created by `XenstoreClient.startTransaction`. */
  constructor(id: number, sender: XsTxSender) {
    super();
    this.id = id;
    this.#sender = sender;
  }

  get finished(): boolean {
    return this.#finished;
  }

  protected send(
    type: number,
    build: XsPayloadBuilder,
    options?: XsRequestOptions,
  ): Promise<Uint8Array> {
    if (this.#finished) {
      return Promise.reject(
        clientError('ERR_XS_TX_FINISHED', `transaction ${this.id} has already ended`, {
          txId: this.id,
        }),
      );
    }
    return this.#sender(type, this.id, build, options);
  }

  /** TRANSACTION_END `T`: commits; `EAGAIN` when another change conflicted. */
  commit(options?: XsRequestOptions): Promise<void> {
    return this.#end(true, options);
  }

  /** TRANSACTION_END `F`: discards the transaction's changes. */
  abort(options?: XsRequestOptions): Promise<void> {
    return this.#end(false, options);
  }

  async #end(commit: boolean, options?: XsRequestOptions): Promise<void> {
    if (this.#finished) {
      throw clientError('ERR_XS_TX_FINISHED', `transaction ${this.id} has already ended`, {
        txId: this.id,
      });
    }
    this.#finished = true;
    parseOkReply(
      await this.#sender(
        XsType.TRANSACTION_END,
        this.id,
        (w) => w.string(commit ? 'T' : 'F'),
        options,
      ),
    );
  }
}
