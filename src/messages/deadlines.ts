/**
 * Request timeouts without a timer per request. Deadlines of the same
 * duration expire in the order they were set, so each duration keeps a
 * doubly linked list (O(1) insert at the tail, O(1) cancel) and one timer
 * armed for its head. A cancelled head leaves the timer as it is: when it
 * fires it finds nothing due and re-arms for the new head. An emptied
 * list keeps its timer too, unreferenced (it holds no process open), so
 * sequential requests (one in flight at a time) do not set and clear a
 * Node timer each; a timer that fires on an empty list drops it.
 */
/** Something that can time out; `expire` is called at most once. */
export abstract class Deadline {
  /** When it is due (performance.now() ms). */
  at = 0;
  prev: Deadline | null = null;
  next: Deadline | null = null;
  list: DeadlineList | null = null;
  abstract expire(): void;
}

class DeadlineList {
  head: Deadline | null = null;
  tail: Deadline | null = null;
  timer: NodeJS.Timeout | undefined;
  timerAt = Infinity;
  readonly #onTimer = (): void => this.#fire();

  constructor(private readonly owner: Deadlines, readonly ms: number) {}

  push(d: Deadline): void {
    d.list = this;
    d.prev = this.tail;
    d.next = null;
    if (this.tail !== null) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    if (this.timer === undefined) this.#arm();
    else if (d.prev === null) this.timer.ref(); // was empty: the timer counts again
  }

  remove(d: Deadline): void {
    if (d.prev !== null) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next !== null) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = null;
    d.list = null;
  }

  /** The list is empty: its timer no longer holds the process open. */
  idle(): void {
    this.timer?.unref();
  }

  #arm(): void {
    const head = this.head;
    if (head === null) {
      this.timer = undefined;
      this.owner.drop(this);
      return;
    }
    this.timerAt = head.at;
    this.timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(head.at - performance.now())));
  }

  #fire(): void {
    this.timer = undefined;
    const now = performance.now();
    // Bounded: each pass removes the head.
    while (this.head !== null && this.head.at <= now) {
      const d = this.head;
      this.remove(d);
      d.expire();
    }
    if (this.timer === undefined) this.#arm();
  }
}

/** One per router: all its requests' timeouts. */
export class Deadlines {
  readonly #lists = new Map<number, DeadlineList>();

  /** Calls `d.expire()` after `ms` unless cancelled first. */
  add(d: Deadline, ms: number): void {
    let list = this.#lists.get(ms);
    if (list === undefined) {
      list = new DeadlineList(this, ms);
      this.#lists.set(ms, list);
    }
    d.at = performance.now() + ms;
    list.push(d);
  }

  cancel(d: Deadline): void {
    const list = d.list;
    if (list === null) return;
    list.remove(d);
    if (list.head === null) list.idle();
  }

  /** @internal An empty list with no timer is forgotten. */
  drop(list: DeadlineList): void {
    if (this.#lists.get(list.ms) === list) this.#lists.delete(list.ms);
  }
}
