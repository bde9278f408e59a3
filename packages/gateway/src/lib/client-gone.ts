// "The client went away", for a call that waits long (issue #13: 10,000 held approvals). An
// AbortSignal's first listener costs ~1 KB of heap per signal (node's EventTarget: its listener
// maps and a hidden class of its own), so a held call listens here instead: a slot, then the
// request's AbortSignal (which the forward and the upstream request listen to) is aborted.

/** What a waiting call needs of an abort signal (an AbortSignal is one too). */
export interface Abortable {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: { handleEvent(): void }, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: { handleEvent(): void }): void;
}

type Listener = { handleEvent(): void };

/** The request's departure: listeners are told once, then `controller` is aborted. */
export class ClientGone implements Abortable {
  private listeners: Listener[] | undefined;
  private gone = false;

  constructor(private readonly controller: AbortController) {}

  get aborted(): boolean {
    return this.gone;
  }

  /** Every listener is told once (as with `{ once: true }`). */
  addEventListener(_type: 'abort', listener: Listener): void {
    if (this.gone) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: Listener): void {
    const at = this.listeners?.indexOf(listener) ?? -1;
    if (at >= 0) this.listeners?.splice(at, 1);
  }

  /** The client left: tells the listeners, then aborts the request's AbortSignal. Once. */
  abort(): void {
    if (this.gone) return;
    this.gone = true;
    const listeners = this.listeners ?? [];
    this.listeners = undefined;
    for (const listener of listeners) listener.handleEvent();
    this.controller.abort();
  }
}
