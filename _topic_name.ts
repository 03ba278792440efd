/**
 * The one rule for topic names, shared by the topic registry and every
 * broker so that a name is refused (or accepted) the same way on all of them.
 *
 * A topic must be a non-empty, well-formed UTF-16 string: no lone surrogate.
 * Brokers that leave the process carry names as UTF-8 (a Redis channel is
 * bytes), and UTF-8 has no form for a lone surrogate: `"\ud800"` and
 * `"\udc00"` would both become `"\ufffd"`, so a publish would reach another
 * room than the one it was meant for. Refusing such names keeps every broker
 * exact; clients can still produce them (JSON's `"\ud800"` escape), so this
 * check is not only for programming errors.
 *
 * @module
 */

/**
 * Throws unless `topic` is a non-empty, well-formed string.
 *
 * @param what The action, for the message: `"subscribe to"`, `"publish to"`.
 * @param topic The value given as a topic.
 * @throws {TypeError} If it is not a string, is empty, or holds a lone
 * surrogate.
 */
export function checkTopic(what: string, topic: unknown): void {
  if (typeof topic !== "string" || topic === "") {
    throw new TypeError(
      `Cannot ${what} a topic: it must be a non-empty string, got ${
        typeof topic === "string" ? '""' : typeof topic
      }`,
    );
  }
  if (!topic.isWellFormed()) {
    const at = loneSurrogateIndex(topic);
    throw new TypeError(
      `Cannot ${what} a topic: it must be well-formed Unicode, got a lone surrogate (U+${
        topic.charCodeAt(at).toString(16).toUpperCase()
      } at index ${at}), which brokers cannot carry exactly`,
    );
  }
}

/** The index of the first lone surrogate of a string that is not well-formed. */
export function loneSurrogateIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a pair
        continue;
      }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}
