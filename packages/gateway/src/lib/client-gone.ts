// "The client went away", for a call that waits long (issue #13: 10,000 held approvals). An
// AbortSignal costs ~700 B of heap once created (node's EventTarget: two maps and a hidden class of
// its own) and ~1 KB with a listener, so a held call listens here instead (a slot), and the request's
// AbortSignal (which the forward and the upstream request listen to) is created only when asked for.

/** What a waiting call needs of an abort signal (an AbortSignal is one too). */
export interface Abortable {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: { handleEvent(): void }, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: { handleEvent(): void }): void;
}

type Listener = { handleEvent(): void };

/** A departure with the request's AbortSignal beside it. */
export interface Departure extends Abortable {
  readonly signal: AbortSignal;
}

/** The request's departure: listeners are told once, then its AbortSignal (if one was asked for) is aborted. */
export class ClientGone implements Departure {
  private listeners: Listener[] | undefined;
  private gone = false;
  private controller: AbortController | undefined;

  get aborted(): boolean {
    return this.gone;
  }

  /** Created on first use (already aborted when the client has left). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.gone) this.controller.abort();
    }
    return this.controller.signal;
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
    this.controller?.abort();
  }
}
