import type { RecipeContext } from "galley";

export default async function (r: RecipeContext) {
  await r.include("base");
  // the docs site always listens one port above the others
  r.override({ web: { docs_port: r.attrs.web.port + 1 } });
  for (const [name, site] of Object.entries(r.attrs.app.sites as Record<string, { title: string }>)) {
    r.web_site(name, {
      root: r.attrs.base.root,
      title: site.title,
      port: name === "docs" ? r.attrs.web.docs_port : r.attrs.web.port,
      headers: { "X-Api-Token": r.attrs.app.api_token },
      notifies: { action: "create", resource: `file[${r.attrs.base.root}/sites/.published]` },
    });
  }
  r.file(`${r.attrs.base.root}/sites/.published`, { content: "sites published\n", action: "nothing" });
}
