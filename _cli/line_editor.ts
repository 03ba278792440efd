/**
 * A small line editor for a terminal in raw mode: a prompt with the line
 * being typed, which stays intact while messages are printed above it.
 * Keys: printable text, Enter, Backspace, Ctrl+U (clear), Ctrl+W (delete a
 * word), Up/Down (history), Ctrl+D (end, on an empty line) and Ctrl+C.
 *
 * It only turns key bytes (already decoded to text) into calls and writes:
 * the terminal itself is the caller's, so it runs without one in tests.
 *
 * @module
 */

/** What the editor reports and where it writes. */
export interface LineEditorHost {
  /** Writes to the terminal. */
  write(text: string): void;
  /** The terminal's width in columns. */
  columns(): number;
  /** Enter was pressed: the line typed. */
  line(text: string): void;
  /** Ctrl+D on an empty line, or Ctrl+C. */
  end(key: "ctrl-d" | "ctrl-c"): void;
}

const ESC = "\x1b";
const segmenter = new Intl.Segmenter();

/** A raw-mode line editor; see the module docs. */
export class LineEditor {
  readonly #host: LineEditorHost;
  readonly #prompt: string;
  readonly #history: string[] = [];
  #historyIndex = 0;
  #draft = "";
  #buffer = "";
  /** The rows the prompt and buffer took when last drawn. */
  #rows = 0;
  /** An escape sequence split across reads. */
  #pendingEscape = "";
  /** The last key was Enter as "\r": a "\n" right after it is the same key. */
  #afterCarriageReturn = false;
  #ended = false;

  constructor(host: LineEditorHost, prompt = "> ") {
    this.#host = host;
    this.#prompt = prompt;
  }

  /** The line being typed. */
  get buffer(): string {
    return this.#buffer;
  }

  /** Draws the prompt. */
  start(): void {
    this.#redraw();
  }

  /**
   * Handles typed input.
   *
   * @param input Decoded text from the terminal (raw mode).
   */
  feed(input: string): void {
    let text = this.#pendingEscape + input;
    this.#pendingEscape = "";
    while (text.length > 0 && !this.#ended) {
      if (text[0] === ESC) {
        const length = escapeLength(text);
        if (length === 0) {
          this.#pendingEscape = text; // wait for the rest of the sequence
          return;
        }
        this.#escape(text.slice(0, length));
        text = text.slice(length);
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(0)!);
      text = text.slice(char.length);
      this.#key(char);
    }
  }

  /**
   * Prints text above the prompt, then draws the prompt and the line being
   * typed again.
   *
   * @param text One or more lines.
   */
  print(text: string): void {
    this.#clear();
    this.#host.write(`${text.replaceAll("\n", "\r\n")}\r\n`);
    this.#rows = 0;
    if (!this.#ended) this.#redraw();
  }

  /** Removes the prompt (before the program prints its last lines). */
  stop(): void {
    this.#ended = true;
    this.#clear();
  }

  #key(char: string): void {
    const isEnter = char === "\r" || char === "\n";
    if (char === "\n" && this.#afterCarriageReturn) {
      this.#afterCarriageReturn = false;
      return;
    }
    this.#afterCarriageReturn = char === "\r";
    if (isEnter) return this.#enter();
    switch (char) {
      case "\x7f": // Backspace
      case "\b":
        this.#buffer = withoutLastGrapheme(this.#buffer);
        return this.#redraw();
      case "\x15": // Ctrl+U
        this.#buffer = "";
        return this.#redraw();
      case "\x17": // Ctrl+W
        this.#buffer = this.#buffer.replace(/\S*\s*$/u, "");
        return this.#redraw();
      case "\x03": // Ctrl+C
        return this.#end("ctrl-c");
      case "\x04": // Ctrl+D: end of input on an empty line, as in a shell
        if (this.#buffer === "") this.#end("ctrl-d");
        return;
    }
    if (char < " ") return; // other control keys do nothing
    this.#buffer += char;
    this.#redraw();
  }

  #escape(sequence: string): void {
    const final = sequence[sequence.length - 1];
    const arrow = sequence.length === 3 && (sequence[1] === "[" ||
      sequence[1] === "O");
    if (arrow && final === "A") this.#recall(-1);
    else if (arrow && final === "B") this.#recall(+1);
    // Other keys (Left, Right, Delete, F-keys, ...) do nothing.
  }

  #recall(step: number): void {
    const next = this.#historyIndex + step;
    if (next < 0 || next > this.#history.length) return;
    if (this.#historyIndex === this.#history.length) this.#draft = this.#buffer;
    this.#historyIndex = next;
    this.#buffer = next === this.#history.length
      ? this.#draft
      : this.#history[next]!;
    this.#redraw();
  }

  #enter(): void {
    const line = this.#buffer;
    // The line stays on screen as typed, and a new prompt starts below it.
    this.#host.write("\r\n");
    this.#rows = 0;
    this.#buffer = "";
    this.#draft = "";
    if (line !== "" && this.#history.at(-1) !== line) this.#history.push(line);
    this.#historyIndex = this.#history.length;
    this.#redraw();
    this.#host.line(line);
  }

  #end(key: "ctrl-d" | "ctrl-c"): void {
    this.#host.write(key === "ctrl-c" ? "^C" : "");
    this.stop();
    this.#host.end(key);
  }

  /** Moves to the first row of the prompt and clears it and what follows. */
  #clear(): void {
    const up = this.#rows > 1 ? `${ESC}[${this.#rows - 1}A` : "";
    this.#host.write(`${up}\r${ESC}[J`);
    this.#rows = 0;
  }

  #redraw(): void {
    this.#clear();
    const shown = this.#prompt + this.#buffer;
    this.#host.write(shown);
    const columns = Math.max(1, this.#host.columns());
    this.#rows = Math.max(1, Math.ceil(displayWidth(shown) / columns));
  }
}

/**
 * The length of the escape sequence at the start of `text`, or 0 when it is
 * not complete yet. CSI (`ESC [ ... final`) and SS3 (`ESC O x`) sequences
 * are recognised; ESC followed by anything else counts as two characters.
 */
function escapeLength(text: string): number {
  if (text.length < 2) return 0;
  const kind = text[1];
  if (kind === "O") return text.length < 3 ? 0 : 3;
  if (kind !== "[") return 2;
  for (let i = 2; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x40 && code <= 0x7e) return i + 1;
  }
  return 0;
}

function withoutLastGrapheme(text: string): string {
  let last = 0;
  for (const { index } of segmenter.segment(text)) last = index;
  return text.slice(0, last);
}

/**
 * Columns a string takes, counting East Asian wide characters and emoji as
 * two; good enough to know how many rows the prompt wraps onto.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || (code >= 0x300 && code < 0x370) || code === 0x200d) {
      continue; // controls, combining marks, zero-width joiner
    }
    const wide = (code >= 0x1100 && code <= 0x115f) ||
      (code >= 0x2e80 && code <= 0xa4cf) ||
      (code >= 0xac00 && code <= 0xd7a3) ||
      (code >= 0xf900 && code <= 0xfaff) ||
      (code >= 0xfe30 && code <= 0xfe4f) ||
      (code >= 0xff00 && code <= 0xff60) ||
      (code >= 0xffe0 && code <= 0xffe6) ||
      (code >= 0x1f300 && code <= 0x1faff) ||
      (code >= 0x20000 && code <= 0x3fffd);
    width += wide ? 2 : 1;
  }
  return width;
}
