import type { RecipeContext } from "galley";

/** The stack's database: name, owner role and its password (stack attributes db.*). */
export function database(r: RecipeContext): { name: string; user: string; password: string } {
  const db = r.attrs.db ?? {};
  for (const key of ["name", "user"]) {
    // they go into SQL and pg_hba.conf as they are: plain identifiers only
    if (typeof db[key] !== "string" || !/^[a-z_][a-z0-9_]{0,62}$/.test(db[key])) {
      throw new Error(`the attribute db.${key} must be a lower-case SQL identifier; set it in the stack`);
    }
  }
  if (typeof db.password !== "string" || db.password === "") {
    throw new Error("the attribute db.password is not set: set it in the stack's attributes");
  }
  return { name: db.name, user: db.user, password: db.password };
}

/** The PostgreSQL cluster Debian's package made: its configuration folder and systemd unit. */
export function cluster(r: RecipeContext): { conf: string; unit: string } {
  const { version, cluster } = r.attrs.postgresql;
  return { conf: `/etc/postgresql/${version}/${cluster}`, unit: `postgresql@${version}-${cluster}` };
}

// creates the role when it is missing and sets its password; psql quotes the values itself
const roleSql = `psql -X -q -v ON_ERROR_STOP=1 -v name="$DB_USER" -v password="$DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name')\\gexec
ALTER ROLE :"name" LOGIN PASSWORD :'password';
SQL`;

/**
 * PostgreSQL listening on every address (pg_hba.conf, rendered at configure, says who may
 * connect), with the stack's role and database. A second run changes nothing: the role is
 * touched only when it cannot log in with the password of the attributes.
 */
export default function (r: RecipeContext) {
  const db = database(r);
  const { conf, unit } = cluster(r);

  // the layer installs it before setup; declared here too so the recipe also works on its own
  r.package("postgresql");
  r.file(`${conf}/conf.d/listen.conf`, {
    content: "# Managed by Galley (cookbook db)\nlisten_addresses = '*'\n",
    owner: "postgres",
    group: "postgres",
    mode: "0644",
    requires: "package[postgresql]",
    notifies: { action: "restart", resource: `service[${unit}]`, timing: "delayed" },
  });
  r.service("postgresql", { action: "enable", requires: "package[postgresql]" });
  r.service(unit, { action: "start", requires: "package[postgresql]" });

  const role = r.execute(`role ${db.user}`, {
    command: roleSql,
    user: "postgres",
    env: { DB_USER: db.user, DB_PASSWORD: db.password },
    sensitive: true,
    requires: `service[${unit}]`,
    // logs in as the role over TCP, as the apps do: works only with the current password
    notIf: async ({ host }) => {
      const login = await host.exec(
        ["psql", "-X", "-h", "127.0.0.1", "-U", db.user, "-d", "postgres", "-c", ""],
        {
          env: { PGPASSWORD: db.password, PGCONNECT_TIMEOUT: "5" },
        },
      );
      return login.exitCode === 0;
    },
  });
  r.execute(`database ${db.name}`, {
    command: ["createdb", "--owner", db.user, db.name],
    user: "postgres",
    requires: role,
    notIf: `runuser -u postgres -- psql -X -tAc "SELECT 1 FROM pg_database WHERE datname = '${db.name}'" | grep -qx 1`,
  });
}
