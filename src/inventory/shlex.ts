/**
 * Python's shlex.split(line, comments=True) (POSIX mode), which Ansible uses on INI host lines:
 * words split at blanks, '…' and "…" quote, a backslash escapes, # starts a comment (also
 * inside a word). Throws on an unclosed quote.
 *
 * @example shlexSplit(`web1 motd="hello world" # db`) // ["web1", "motd=hello world"]
 */
export function shlexSplit(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (" \t\r\n".includes(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "#") {
      break;
    } else if (char === "\\") {
      if (i + 1 >= line.length) throw new Error("no escaped character");
      word = (word ?? "") + line[++i];
    } else if (char === "'" || char === '"') {
      const end = closingQuote(line, i);
      word = (word ?? "") + unquote(line.slice(i + 1, end), char);
      i = end;
    } else {
      word = (word ?? "") + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

function closingQuote(line: string, start: number): number {
  const quote = line[start];
  for (let i = start + 1; i < line.length; i++) {
    if (quote === '"' && line[i] === "\\") i++;
    else if (line[i] === quote) return i;
  }
  throw new Error("no closing quotation");
}

// inside "…" a backslash escapes only " and \; inside '…' nothing is escaped
function unquote(text: string, quote: string): string {
  return quote === "'" ? text : text.replace(/\\(["\\])/g, "$1");
}
