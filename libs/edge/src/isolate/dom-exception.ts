/** The web platform's DOMException (V8 has none): what aborts and crypto errors reject with. */
const CODES: Record<string, number> = {
  IndexSizeError: 1,
  NotFoundError: 8,
  NotSupportedError: 9,
  InvalidStateError: 11,
  SyntaxError: 12,
  InvalidAccessError: 15,
  TypeMismatchError: 17,
  NetworkError: 19,
  AbortError: 20,
  TimeoutError: 23,
  QuotaExceededError: 22,
  DataCloneError: 25,
};

export class EdgeDOMException extends Error {
  readonly code: number;
  constructor(message = "", name = "Error") {
    super(message);
    Object.defineProperty(this, "name", { value: name, configurable: true, writable: true });
    this.code = CODES[name] ?? 0;
  }
}
