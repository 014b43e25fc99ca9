import type { RecipeContext } from "galley";
import { cluster, database } from "./setup.ts";

/**
 * pg_hba.conf from the stack state: Debian's defaults, plus the stack's database open to each
 * online app instance by its address. PostgreSQL reloads it only when it changed.
 */
export default function (r: RecipeContext) {
  const db = database(r);
  const { conf, unit } = cluster(r);
  const clients = r.stack
    .online(r.attrs.postgresql.client_layer)
    .filter((instance) => instance.address !== undefined)
    .map((instance) => ({
      name: instance.name,
      // an IPv6 address is one host with /128
      cidr: `${instance.address}/${instance.address!.includes(":") ? 128 : 32}`,
    }));

  r.service(unit, { action: "start" });
  r.template(`${conf}/pg_hba.conf`, {
    source: "pg_hba.conf.eta",
    variables: { database: db.name, user: db.user, layer: r.attrs.postgresql.client_layer, clients },
    owner: "postgres",
    group: "postgres",
    mode: "0640",
    notifies: { action: "reload", resource: `service[${unit}]`, timing: "delayed" },
  });
}
