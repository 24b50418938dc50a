/**
 * One shared coarse timer for the request path. Timeouts of the same duration expire in the
 * order they were armed, so each duration keeps an intrusive FIFO list (as Node's own timer
 * lists do): arming and cancelling are O(1) with no allocation beyond the node a request
 * keeps, and a single `setTimeout` is armed for the earliest deadline of all lists.
 */

/** Something that owns timers; `kind` tells which of its timers fired. */
export interface TimerTarget {
  onTimer(kind: number): void;
}

export class TimerNode {
  deadline = 0;
  prev: TimerNode | null = null;
  next: TimerNode | null = null;
  list: TimerList | null = null;
  constructor(
    readonly target: TimerTarget,
    readonly kind: number,
  ) {}
}

class TimerList {
  head: TimerNode | null = null;
  tail: TimerNode | null = null;
  constructor(readonly duration: number) {}
}

/** The longest delay setTimeout takes. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Milliseconds on a monotonic clock. */
export const now = (): number => performance.now();

export class CoarseTimers {
  private readonly lists = new Map<number, TimerList>();
  private handle: ReturnType<typeof setTimeout> | null = null;
  private armedFor = Infinity;
  private readonly fire = (): void => this.run();

  /** Arms `node` to fire after `ms` (rounded up to whole ms); re-arming moves it. */
  arm(node: TimerNode, ms: number): void {
    if (node.list !== null) this.cancel(node);
    const duration = Math.max(1, Math.ceil(ms));
    let list = this.lists.get(duration);
    if (list === undefined) {
      list = new TimerList(duration);
      this.lists.set(duration, list);
    }
    node.deadline = now() + duration;
    node.list = list;
    node.prev = list.tail;
    node.next = null;
    if (list.tail !== null) list.tail.next = node;
    else list.head = node;
    list.tail = node;
    if (node.deadline < this.armedFor) this.schedule(node.deadline);
  }

  cancel(node: TimerNode): void {
    const list = node.list;
    if (list === null) return;
    if (node.prev !== null) node.prev.next = node.next;
    else list.head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else list.tail = node.prev;
    node.prev = node.next = null;
    node.list = null;
  }

  private schedule(deadline: number): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.armedFor = deadline;
    // setTimeout takes at most 2^31-1 ms (~24.8 days) and turns more into 1 ms: a far
    // deadline (a route timeout of 1000h) is woken at the cap and re-armed from there.
    this.handle = setTimeout(this.fire, Math.min(MAX_DELAY_MS, Math.max(1, deadline - now())));
    this.handle.unref();
  }

  private run(): void {
    this.handle = null;
    this.armedFor = Infinity;
    const t = now() + 0.5;
    let earliest = Infinity;
    for (const list of this.lists.values()) {
      let node = list.head;
      while (node !== null && node.deadline <= t) {
        this.cancel(node);
        node.target.onTimer(node.kind);
        node = list.head;
      }
      if (node !== null && node.deadline < earliest) earliest = node.deadline;
    }
    if (earliest !== Infinity && earliest < this.armedFor) this.schedule(earliest);
  }

  /** Stops the underlying timer (pending nodes never fire). */
  close(): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.handle = null;
    this.lists.clear();
  }
}
