import type { RecipeContext } from "galley";

export default function (r: RecipeContext) {
  r.directory(r.attrs.base.root, { mode: "0755" });
  r.template(`${r.attrs.base.root}/motd`, {
    source: "motd.eta",
    variables: { motd: r.attrs.base.motd, host: r.attrs.hostname },
    mode: "0644",
  });
}
