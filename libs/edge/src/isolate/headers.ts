/** Headers: a list of (lower-case name, value) pairs, iterated sorted and combined as the Fetch standard says. */

export type HeadersInitLike = EdgeHeaders | Iterable<[string, string]> | Record<string, string> | undefined;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function headerName(name: string): string {
  const lower = String(name).toLowerCase();
  if (!TOKEN.test(lower)) throw new TypeError(`invalid header name: ${JSON.stringify(name)}`);
  return lower;
}

function headerValue(value: string): string {
  const trimmed = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (/[\0\r\n]/.test(trimmed)) throw new TypeError(`invalid header value: ${JSON.stringify(value)}`);
  return trimmed;
}

let listOf: (headers: EdgeHeaders) => [string, string][];

export class EdgeHeaders {
  #list: [string, string][] = [];

  static {
    listOf = (headers) => headers.#list;
  }

  constructor(init?: HeadersInitLike) {
    if (init === undefined || init === null) return;
    if (init instanceof EdgeHeaders) {
      for (const [name, value] of init.#list) this.#list.push([name, value]);
    } else if (typeof (init as Iterable<unknown>)[Symbol.iterator] === "function") {
      for (const pair of init as Iterable<[string, string]>) {
        const [name, value, ...rest] = pair;
        if (name === undefined || value === undefined || rest.length > 0)
          throw new TypeError("a header init pair must have exactly two items");
        this.append(name, value);
      }
    } else if (typeof init === "object") {
      for (const name of Object.keys(init))
        this.append(name, (init as Record<string, string>)[name] as string);
    } else {
      throw new TypeError("headers must be a Headers, an iterable of pairs or a record");
    }
  }

  append(name: string, value: string): void {
    this.#list.push([headerName(name), headerValue(value)]);
  }

  delete(name: string): void {
    const key = headerName(name);
    this.#list = this.#list.filter(([n]) => n !== key);
  }

  get(name: string): string | null {
    const key = headerName(name);
    const values = this.#list.filter(([n]) => n === key).map(([, v]) => v);
    return values.length === 0 ? null : values.join(", ");
  }

  getSetCookie(): string[] {
    return this.#list.filter(([n]) => n === "set-cookie").map(([, v]) => v);
  }

  has(name: string): boolean {
    const key = headerName(name);
    return this.#list.some(([n]) => n === key);
  }

  set(name: string, value: string): void {
    const key = headerName(name);
    const val = headerValue(value);
    const at = this.#list.findIndex(([n]) => n === key);
    if (at < 0) {
      this.#list.push([key, val]);
      return;
    }
    this.#list = this.#list.filter(([n], i) => n !== key || i === at);
    this.#list[at] = [key, val];
  }

  forEach(callback: (value: string, name: string, headers: EdgeHeaders) => void, thisArg?: unknown): void {
    for (const [name, value] of this) callback.call(thisArg, value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    const names = [...new Set(this.#list.map(([n]) => n))].sort();
    for (const name of names) {
      if (name === "set-cookie") for (const value of this.getSetCookie()) yield [name, value];
      else yield [name, this.get(name) as string];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }
}

/** The pairs as they are, in order, repeated names kept: what crosses to the host. */
export function headerList(headers: EdgeHeaders): [string, string][] {
  return listOf(headers).map(([n, v]) => [n, v]);
}
