import type { RecipeContext } from "galley";

/** The site: a release folder, a `current` link to it, and the nginx server block. */
export default function (r: RecipeContext) {
  const site = r.attrs.webapp;
  const release = `${site.root}/releases/${site.release}`;
  const reload = [
    { action: "run", resource: "execute[nginx -t]", timing: "delayed" as const },
    { action: "reload", resource: "service[nginx]", timing: "delayed" as const },
  ];

  r.group(site.owner, { system: true });
  r.user(site.owner, { gid: site.owner, system: true, home: site.root, shell: "/usr/sbin/nologin" });
  r.directory(site.root, { owner: site.owner, group: site.owner, mode: "0755" });
  r.directory(`${site.root}/releases`, { owner: site.owner, mode: "0755" });
  r.directory(release, { owner: site.owner, mode: "0755" });
  r.template(`${release}/index.html`, {
    source: "index.html.eta",
    variables: { ...site, hostname: r.facts.hostname },
    owner: site.owner,
    mode: "0644",
  });
  r.file(`${release}/robots.txt`, { source: "robots.txt", owner: site.owner, mode: "0644" });
  r.link(`${site.root}/current`, { to: release });

  r.template("/etc/nginx/sites-available/webapp", {
    source: "site.conf.eta",
    variables: { ...site, status: true },
    mode: "0644",
    requires: "package[nginx]",
    notifies: reload,
  });
  r.link("/etc/nginx/sites-enabled/webapp", { to: "/etc/nginx/sites-available/webapp", notifies: reload });
  r.line("/etc/nginx/nginx.conf", {
    line: "\tserver_tokens off;",
    match: "^\\s*#?\\s*server_tokens\\b",
    requires: "package[nginx]",
    notifies: reload,
  });
}
