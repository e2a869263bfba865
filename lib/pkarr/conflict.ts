/**
 * The conflict of a write: the network (a DHT node or a relay) holds a newer item, or the
 * compare-and-swap did not match.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/**
 * A put was refused because the network holds a newer item (BEP44 302) or the `cas` did not
 * match (301). The caller should re-read, merge and publish again.
 */
export class DhtConflictError extends CipherpostError {
  /** 301 (CAS mismatch) or 302 (sequence number not newer than the stored one). */
  readonly code: 301 | 302;

  /**
   * A conflict of kind `network`, with a hint to re-read and try again.
   *
   * @param code The BEP44 error code the node or relay answered.
   * @param message One line for the user.
   */
  constructor(code: 301 | 302, message: string) {
    super("network", message, "someone published a newer record: re-read it and try again");
    this.name = "DhtConflictError";
    this.code = code;
  }
}
