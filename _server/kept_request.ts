/**
 * What a server-side connection keeps of its upgrade request, for
 * `conn.request` (internal).
 *
 * Deno closes the upgrade request once the 101 response is returned: reading
 * its headers then throws "Request closed". `onEstablish` and `conn.request`
 * come later, so the headers are copied before upgrading. A connection lives
 * long and a request head may be large (Deno accepts about 64 KiB of
 * headers), so the copy is bounded and compact:
 *
 * - the headers are kept as one flat string, not one string per name and
 *   value, and the `Request` is built only when read;
 * - until `onEstablish` has run, every header is kept (it receives the whole
 *   request); after that, only {@linkcode KEPT_HEADER_BYTES}: headers are
 *   taken in the order `Headers` lists them (by name), each whole or not at
 *   all, skipping any that would pass the budget.
 *
 * @module
 */

/**
 * How many bytes of header names and values `conn.request` keeps after
 * `onEstablish` has run (a header counts its name's and value's lengths).
 */
export const KEPT_HEADER_BYTES = 8 * 1024;

// Header names and values never contain a line feed (Headers refuses them).
const SEPARATOR = "\n";

/** The kept copy of one upgrade request. */
export class KeptRequest {
  readonly #url: string;
  #headers: string;
  #all: [string, string][] | undefined;
  #copy: WeakRef<Request> | undefined;
  // Every header fit the budget: the request onEstablish gets can serve as
  // `conn.request` too.
  readonly #fitsBudget: boolean;

  /**
   * Copies what is needed of `request`, before it is closed.
   *
   * @param request The upgrade request, still readable.
   * @param keepAll Whether {@linkcode establish} will be called: every header
   * is kept until then.
   * @param budget How many header bytes to keep for `conn.request`.
   */
  constructor(
    request: Request,
    keepAll = true,
    budget: number = KEPT_HEADER_BYTES,
  ) {
    this.#url = request.url;
    const all: [string, string][] | undefined = keepAll ? [] : undefined;
    const kept: string[] = [];
    let total = 0;
    let keptBytes = 0;
    // forEach, not for...of: Deno's Headers iterator makes a result object
    // and an entry array per header, which took ~9 µs of a ~160 µs handshake
    // (forEach: ~1 µs).
    request.headers.forEach((value, name) => {
      all?.push([name, value]);
      const size = name.length + value.length;
      total += size;
      if (keptBytes + size <= budget) {
        kept.push(name, value);
        keptBytes += size;
      }
    });
    // join() makes one flat string (`+=` would keep a tree of pieces, ~0.4
    // KiB per connection), and lets go of the per-header strings.
    this.#headers = kept.join(SEPARATOR);
    this.#all = all;
    this.#fitsBudget = total === keptBytes;
  }

  /** The URL of the request. */
  get url(): string {
    return this.#url;
  }

  /**
   * The request with every header, for `onEstablish`, built from the pairs
   * taken before the upgrade; from then on only the bounded copy is kept.
   */
  establish(): Request {
    const all = this.#all;
    if (all === undefined) return this.read();
    this.#all = undefined;
    const request = new Request(this.#url, { headers: all });
    // When nothing was left out, the same object serves `conn.request`.
    if (this.#fitsBudget && !this.#copy) this.#copy = new WeakRef(request);
    return request;
  }

  /**
   * `conn.request`: a copy of the request with the kept headers, built when
   * first read. The same object is returned for as long as anybody holds it.
   */
  readonly read = (): Request => {
    let copy = this.#copy?.deref();
    if (!copy) {
      copy = build(this.#url, this.#headers);
      this.#copy = new WeakRef(copy);
    }
    return copy;
  };
}

function build(url: string, headers: string): Request {
  const pairs: [string, string][] = [];
  if (headers !== "") {
    const parts = headers.split(SEPARATOR);
    // Pairs are converted ~3x faster than a Headers built by append().
    for (let i = 0; i < parts.length; i += 2) {
      pairs.push([parts[i]!, parts[i + 1]!]);
    }
  }
  return new Request(url, { headers: pairs });
}
