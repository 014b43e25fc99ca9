import { composite, v } from "galley";

/** A static site: its folder, an index page and its config, under the base root. */
export default composite({
  description: "a static site: its folder, its index page and its config",
  properties: {
    root: v.string(),
    port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)), 8080),
    title: v.optional(v.string(), "It works"),
    headers: v.optional(v.record(v.string(), v.string()), {}),
  },
  actions: ["create", "delete"],
  body(r, { name, action, props }) {
    const dir = `${props.root}/sites/${name}`;
    if (action === "delete") {
      r.directory(dir, { action: "delete", recursive: true });
      return;
    }
    r.directory(`${props.root}/sites`, { mode: "0755" });
    r.directory(dir, { mode: "0755" });
    r.file(`${dir}/index.html`, { content: `<h1>${props.title}</h1>\n`, mode: "0644" });
    r.template(`${dir}/site.conf`, {
      source: "site.conf.eta",
      variables: { name, port: props.port, dir, headers: props.headers },
      mode: "0640",
    });
  },
});
