/**
 * Whether an `onEstablish` function can read more than its first argument
 * (internal).
 *
 * `onEstablish(conn, request, info)` receives a copy of the upgrade request:
 * Deno closes the original once the 101 is sent, and `onEstablish` runs
 * later, on the socket's `open`. Building that copy (a `Request` with every
 * header) took ~6 µs of a ~110 µs handshake, for the many handlers written
 * `(conn) => …`, which never see it. This decides, once per handler, from
 * the function's declared parameters and source, whether the copy is made.
 *
 * It answers "only the connection" only when that is certain: a function of
 * exactly one plain parameter whose source does not mention `arguments`.
 * Rest parameters, defaults, destructuring, bound and native functions, and
 * anything it cannot parse get the request.
 *
 * @module
 */

// `conn => …`, `(conn) => …`, `async (conn) => …`, `function f(conn) {`,
// `async function* f(conn) {`, and methods `onEstablish(conn) {`. Type
// annotations are gone at run time.
const ONE_PLAIN_PARAMETER =
  /^(?:async\s+)?(?:(?:function\b\s*\*?\s*[\w$]*\s*|[\w$]+\s*)?\(\s*[A-Za-z_$][\w$]*\s*\)\s*(?:=>|\{)|[A-Za-z_$][\w$]*\s*=>)/;

/**
 * `true` when `fn` certainly reads nothing but its first argument.
 *
 * @param fn An `onEstablish` function.
 */
export function readsOnlyFirstArgument(
  fn: (...args: never[]) => unknown,
): boolean {
  if (fn.length !== 1) return false;
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return false;
  }
  return ONE_PLAIN_PARAMETER.test(source) && !/\barguments\b/.test(source);
}
