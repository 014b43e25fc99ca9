import { GalleyError } from "../core/errors.ts";

// Asking a secret on the terminal: the characters typed are not echoed (the terminal in raw mode).

/**
 * Asks `question` on stderr and reads one line from the terminal without echoing it.
 *
 * @example const password = await promptHidden("password for alice: ")
 */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  stdin.setRawMode(true); // before the question: what is typed once it shows is never echoed
  process.stderr.write(question);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = "";
    const done = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") {
          done();
          resolve(text);
          return;
        }
        if (ch === "\u0003" || (ch === "\u0004" && text === "")) {
          done();
          reject(new GalleyError("INTERRUPTED", "no password given", { hint: "run the command again" }));
          return;
        }
        if (ch === "\u007f" || ch === "\b") text = [...text].slice(0, -1).join("");
        else if (ch >= " ") text += ch;
      }
    };
    stdin.on("data", onData);
  });
}
