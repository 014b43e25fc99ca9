/**
 * Python's ast.literal_eval for the values of an INI inventory, as Ansible reads them: numbers,
 * strings, True/False/None, lists, tuples and dicts become values; anything else (including a
 * syntax error) stays the text as written.
 *
 * @example pythonLiteral("True") // true;  pythonLiteral("[1, 'a']") // [1, "a"];  pythonLiteral("yes") // "yes"
 */
export function pythonLiteral(text: string): unknown {
  const parser = new LiteralParser(text.replace(/^[ \t]+/, ""));
  try {
    const value = parser.value();
    parser.skip();
    return parser.atEnd() ? value : text;
  } catch (error) {
    if (error === notLiteral) return text;
    throw error;
  }
}

const notLiteral = Symbol("not a literal");
const digits = `[0-9](?:_?[0-9])*`;
const numberPattern = new RegExp(
  `^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|` +
    String.raw`(?:${digits}\.(?:${digits})?|\.${digits})(?:[eE][-+]?${digits})?|${digits}[eE][-+]?${digits}|` +
    String.raw`[1-9](?:_?[0-9])*|0(?:_?0)*)(?![\w.])`,
);
const simpleEscapes: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

class LiteralParser {
  private pos = 0;
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  /** Skips blanks and a trailing # comment. */
  skip(): void {
    while (/[ \t\f]/.test(this.text[this.pos] ?? "")) this.pos++;
    if (this.text[this.pos] === "#") this.pos = this.text.length;
  }

  value(): unknown {
    this.skip();
    const rest = this.text.slice(this.pos);
    const char = rest[0];
    if (char === "[") return this.sequence("[", "]");
    if (char === "(") return this.parenthesized();
    if (char === "{") return this.dict();
    if (char === "-" || char === "+") {
      this.pos++;
      this.skip();
      const number = this.number();
      return char === "-" ? -number : number;
    }
    if (/^(?:[rRuUbB]|[rR][bB]|[bB][rR])?['"]/.test(rest)) return this.strings();
    const word = /^(True|False|None)(?![\w])/.exec(rest);
    if (word) {
      this.pos += word[1]!.length;
      return word[1] === "True" ? true : word[1] === "False" ? false : null;
    }
    return this.number();
  }

  private number(): number {
    const m = numberPattern.exec(this.text.slice(this.pos));
    if (!m) throw notLiteral;
    this.pos += m[0].length;
    const text = m[0].replaceAll("_", "");
    if (/^0[oO]/.test(text)) return Number.parseInt(text.slice(2), 8);
    if (/^0[bB]/.test(text)) return Number.parseInt(text.slice(2), 2);
    return Number(text);
  }

  // adjacent strings join, as in Python source: 'a' "b" is "ab"
  private strings(): string {
    let result = "";
    do {
      result += this.string();
      this.skip();
    } while (/^(?:[rRuUbB]|[rR][bB]|[bB][rR])?['"]/.test(this.text.slice(this.pos)));
    return result;
  }

  private string(): string {
    const prefix = /^[rRuUbB]*/.exec(this.text.slice(this.pos))![0];
    this.pos += prefix.length;
    const raw = /r/i.test(prefix);
    const quote = this.text.startsWith(this.text[this.pos]!.repeat(3), this.pos)
      ? this.text[this.pos]!.repeat(3)
      : this.text[this.pos]!;
    this.pos += quote.length;
    let result = "";
    while (!this.text.startsWith(quote, this.pos)) {
      const char = this.text[this.pos];
      if (char === undefined) throw notLiteral;
      if (char === "\\") {
        const next = this.text[this.pos + 1];
        if (next === undefined) throw notLiteral;
        const [text, length] = raw ? [char + next, 2] : this.escape(next);
        result += text;
        this.pos += length;
        continue;
      }
      result += char;
      this.pos++;
    }
    this.pos += quote.length;
    return result;
  }

  /** The text of the escape at this.pos (a backslash, then `next`), and its length. */
  private escape(next: string): [string, number] {
    if (next in simpleEscapes) return [simpleEscapes[next]!, 2];
    const rest = this.text.slice(this.pos + 1);
    const octal = /^[0-7]{1,3}/.exec(rest);
    const hex = /^(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/.exec(rest);
    const code = octal
      ? Number.parseInt(octal[0], 8)
      : hex
        ? Number.parseInt(hex[0].slice(1), 16)
        : undefined;
    if (code === undefined) {
      // \N{NAME} is valid Python, but rare enough to stay text
      if (/^[xuUN]/.test(rest)) throw notLiteral;
      return [`\\${next}`, 2];
    }
    if (code > 0x10ffff) throw notLiteral;
    return [String.fromCodePoint(code), 1 + (octal ?? hex)![0].length];
  }

  private sequence(open: string, close: string): unknown[] {
    this.pos += open.length;
    const items: unknown[] = [];
    for (;;) {
      this.skip();
      if (this.text[this.pos] === close) break;
      items.push(this.value());
      this.skip();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== close) throw notLiteral;
    }
    this.pos++;
    return items;
  }

  // (x) is x; (x,) and () are tuples, which JSON shows as lists
  private parenthesized(): unknown {
    this.pos++;
    this.skip();
    if (this.text[this.pos] === ")") {
      this.pos++;
      return [];
    }
    const first = this.value();
    this.skip();
    if (this.text[this.pos] === ")") {
      this.pos++;
      return first;
    }
    if (this.text[this.pos] !== ",") throw notLiteral;
    return [first, ...this.sequence(",", ")")];
  }

  private dict(): Record<string, unknown> {
    this.pos++;
    const result: Record<string, unknown> = {};
    for (;;) {
      this.skip();
      if (this.text[this.pos] === "}") break;
      const key = this.value();
      this.skip();
      // a set ({1, 2}) is a literal too, but not one JSON can show
      if (this.text[this.pos] !== ":" || (typeof key === "object" && key !== null)) throw notLiteral;
      this.pos++;
      result[jsonKey(key)] = this.value();
      this.skip();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== "}") throw notLiteral;
    }
    this.pos++;
    return result;
  }
}

// json.dumps writes non-string keys as text: 1 → "1", True → "true", None → "null"
function jsonKey(key: unknown): string {
  return key === null ? "null" : String(key);
}
