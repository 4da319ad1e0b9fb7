/** The most recent `capacity` bytes of a console's output, for replay on attach. */
export class ReplayBuffer {
  private readonly data: Uint8Array;
  private start = 0;
  private length = 0;

  constructor(readonly capacity: number) {
    this.data = new Uint8Array(Math.max(0, capacity));
  }

  get size(): number {
    return this.length;
  }

  append(bytes: Uint8Array): void {
    const cap = this.capacity;
    if (cap === 0 || bytes.length === 0) return;
    if (bytes.length >= cap) {
      this.data.set(bytes.subarray(bytes.length - cap));
      this.start = 0;
      this.length = cap;
      return;
    }
    let end = (this.start + this.length) % cap;
    const first = Math.min(bytes.length, cap - end);
    this.data.set(bytes.subarray(0, first), end);
    this.data.set(bytes.subarray(first), 0);
    end = (end + bytes.length) % cap;
    const overflow = this.length + bytes.length - cap;
    if (overflow > 0) {
      this.start = (this.start + overflow) % cap;
      this.length = cap;
    } else {
      this.length += bytes.length;
    }
  }

  /** The newest `max` bytes (all of them by default), oldest first. */
  snapshot(max = this.length): Uint8Array {
    const n = Math.max(0, Math.min(max, this.length));
    const out = new Uint8Array(n);
    const cap = this.capacity;
    let from = (this.start + this.length - n) % cap;
    const first = Math.min(n, cap - from);
    out.set(this.data.subarray(from, from + first));
    if (first < n) {
      from = 0;
      out.set(this.data.subarray(0, n - first), first);
    }
    return out;
  }
}
