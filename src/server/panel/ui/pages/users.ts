import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, can, type SessionInfo, seg, setSession, useSession } from "../api.ts";
import {
  ConfirmButton,
  ErrorBox,
  Field,
  Loading,
  type Outcome,
  OutcomeLine,
  Table,
  Time,
  useAsync,
  useTitle,
} from "../components.ts";
import { type Grant, grantsText, parseGrants } from "../grants.ts";
import type { PageProps } from "../router.ts";

// The users page: admins (on every stack) list, add and remove the people who log in with a
// password, and change their grants or set a new password; a user changes their own password.

interface User {
  name: string;
  grants: Grant[];
  createdAt: string;
  updatedAt: string;
  lastLoginAt?: string | undefined;
}

function value(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

function AddUser(props: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [grants, setGrants] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseGrants(grants);
    if ("error" in parsed) return setOutcome({ error: new Error(parsed.error) });
    try {
      await api.post("/v1/users", { name: name.trim(), password, grants: parsed.grants });
      setOutcome({ text: `User ${name.trim()} added.` });
      setName("");
      setPassword("");
      setGrants("");
      props.onDone();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return html`<form class="card" aria-labelledby="add-user-title" onSubmit=${submit}>
    <h2 id="add-user-title">Add a user</h2>
    <${Field} label="Name" id="add-user-name">
      <input id="add-user-name" required autocomplete="off" spellcheck="false" value=${name}
        onInput=${(e: Event) => setName(value(e))} />
    <//>
    <${Field} label="Password" id="add-user-password" hint="12 characters or more">
      <input id="add-user-password" aria-describedby="add-user-password-hint" type="password" required
        autocomplete="new-password" value=${password} onInput=${(e: Event) => setPassword(value(e))} />
    <//>
    <${Field} label="Grants" id="add-user-grants" hint="STACK:ROLE, e.g. web:deployer, *:viewer">
      <input id="add-user-grants" aria-describedby="add-user-grants-hint" required spellcheck="false"
        value=${grants} onInput=${(e: Event) => setGrants(value(e))} />
    <//>
    <button type="submit">Add user</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}

function ChangeUser(props: { users: User[]; onDone: () => void }) {
  const [name, setName] = useState("");
  const [grants, setGrants] = useState("");
  const [password, setPassword] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const chosen = name === "" ? props.users[0]?.name : name;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (chosen === undefined) return;
    const body: Record<string, unknown> = {};
    if (grants.trim() !== "") {
      const parsed = parseGrants(grants);
      if ("error" in parsed) return setOutcome({ error: new Error(parsed.error) });
      body.grants = parsed.grants;
    }
    if (password !== "") body.password = password;
    if (Object.keys(body).length === 0)
      return setOutcome({ error: new Error("give new grants, a new password, or both") });
    try {
      await api.patch(`/v1/users/${seg(chosen)}`, body);
      setOutcome({
        text: `User ${chosen} changed${body.password === undefined ? "" : " (their sessions ended)"}.`,
      });
      setGrants("");
      setPassword("");
      props.onDone();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return html`<form class="card" aria-labelledby="change-user-title" onSubmit=${submit}>
    <h2 id="change-user-title">Change a user</h2>
    <${Field} label="User" id="change-user-name">
      <select id="change-user-name" value=${chosen ?? ""} onChange=${(e: Event) => setName(value(e))}>
        ${props.users.map((u) => html`<option value=${u.name}>${u.name}</option>`)}
      </select>
    <//>
    <${Field} label="New grants" id="change-user-grants" hint="empty: unchanged">
      <input id="change-user-grants" aria-describedby="change-user-grants-hint" spellcheck="false"
        placeholder=${grantsText(props.users.find((u) => u.name === chosen)?.grants ?? [])}
        value=${grants} onInput=${(e: Event) => setGrants(value(e))} />
    <//>
    <${Field} label="New password" id="change-user-password" hint="empty: unchanged; a new one ends their sessions">
      <input id="change-user-password" aria-describedby="change-user-password-hint" type="password"
        autocomplete="new-password" value=${password} onInput=${(e: Event) => setPassword(value(e))} />
    <//>
    <button type="submit" disabled=${chosen === undefined}>Change user</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}

function OwnPassword() {
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      // the server ends every session of the user and opens a new one for this browser
      setSession(await api.post<SessionInfo>("/v1/session/password", { current, password }));
      setOutcome({ text: "Your password is changed; your other sessions ended." });
      setCurrent("");
      setPassword("");
    } catch (error) {
      setOutcome({ error });
    }
  };
  return html`<form class="card" aria-labelledby="own-password-title" onSubmit=${submit}>
    <h2 id="own-password-title">Your password</h2>
    <${Field} label="Current password" id="own-current">
      <input id="own-current" type="password" required autocomplete="current-password" value=${current}
        onInput=${(e: Event) => setCurrent(value(e))} />
    <//>
    <${Field} label="New password" id="own-password" hint="12 characters or more">
      <input id="own-password" aria-describedby="own-password-hint" type="password" required
        autocomplete="new-password" value=${password} onInput=${(e: Event) => setPassword(value(e))} />
    <//>
    <button type="submit">Change password</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}

function UserAdmin() {
  const users = useAsync(() => api.get<{ users: User[] }>("/v1/users"), []);
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const remove = async (name: string) => {
    try {
      await api.del(`/v1/users/${seg(name)}`);
      setOutcome({ text: `User ${name} removed.` });
      await users.reload();
    } catch (error) {
      setOutcome({ error });
    }
  };
  const list = users.data?.users;
  return html`<${ErrorBox} error=${users.error} title="The users could not be read" />
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
    ${
      list === undefined
        ? users.error === undefined
          ? html`<${Loading} what="the users" />`
          : null
        : html`<${Table} caption="Users" head=${["User", "Grants", "Last login", "Created", "Actions"]}>
            ${
              list.length === 0
                ? html`<tr><td colspan="5" class="muted">No users yet: tokens only</td></tr>`
                : list.map(
                    (u) => html`<tr key=${u.name}>
                      <th scope="row">${u.name}</th>
                      <td>${grantsText(u.grants)}</td>
                      <td><${Time} at=${u.lastLoginAt} empty="never" /></td>
                      <td><${Time} at=${u.createdAt} /></td>
                      <td class="row-actions">
                        <${ConfirmButton} label=${`Remove ${u.name}`} question=${`Remove ${u.name}? Their sessions end.`}
                          onConfirm=${() => remove(u.name)} />
                      </td>
                    </tr>`,
                  )
            }
          <//>
          <div class="forms">
            <${AddUser} onDone=${() => void users.reload()} />
            ${list.length === 0 ? null : html`<${ChangeUser} users=${list} onDone=${() => void users.reload()} />`}
          </div>`
    }`;
}

/** The users page. */
export default function UsersPage(_props: PageProps) {
  useTitle("Users");
  const session = useSession();
  const admin = can(undefined, "admin");
  return html`<h1>Users</h1>
    ${
      admin
        ? html`<${UserAdmin} />`
        : html`<p>Only an admin of every stack (a <code>*:admin</code> grant) manages users.</p>`
    }
    ${session?.actor.kind === "user" ? html`<div class="forms"><${OwnPassword} /></div>` : null}`;
}
