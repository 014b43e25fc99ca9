import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, type SessionInfo, setSession, useSession } from "../api.ts";
import { ErrorBox, Field, Link, useTitle } from "../components.ts";
import { navigate, type PageProps } from "../router.ts";
import { safeNext } from "../routes.ts";

// The login page: a user account (User, Password) or an admin token (Token), each its own form.
// After a login the panel goes back to the page that was asked for (?next=).

/** The login page. */
export default function LoginPage(props: PageProps) {
  useTitle("Log in");
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState<"user" | "token" | undefined>(undefined);
  const [error, setError] = useState<{ form: "user" | "token"; error: unknown } | undefined>(undefined);
  const submit = (form: "user" | "token", body: unknown) => async (event: Event) => {
    event.preventDefault();
    setBusy(form);
    setError(undefined);
    try {
      const session = await api.post<SessionInfo>("/v1/session", body);
      setSession(session);
      navigate(safeNext(props.query.get("next")), { replace: true });
    } catch (e) {
      setError({ form, error: e });
      setBusy(undefined);
    }
  };
  const current = useSession();
  return html`<div class="login">
    <h1>Log in to Galley</h1>
    ${
      current === undefined
        ? null
        : html`<p class="notice">
            You are logged in as <strong>${current.actor.name}</strong>. <${Link} href=${safeNext(props.query.get("next"))}>Go on<//>, or log in as someone else.
          </p>`
    }
    <form class="card" aria-labelledby="login-user-title"
      onSubmit=${submit("user", { user: user.trim(), password })}>
      <h2 id="login-user-title">With a user account</h2>
      <${Field} label="User" id="login-user">
        <input id="login-user" name="username" autocomplete="username" required
          value=${user} onInput=${(e: Event) => setUser((e.target as HTMLInputElement).value)} />
      <//>
      <${Field} label="Password" id="login-password">
        <input id="login-password" type="password" name="password" autocomplete="current-password" required
          value=${password} onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)} />
      <//>
      ${error?.form === "user" ? html`<${ErrorBox} error=${error.error} title="Not logged in" />` : null}
      <button type="submit" class="primary" disabled=${busy !== undefined}>Log in</button>
    </form>
    <form class="card" aria-labelledby="login-token-title" onSubmit=${submit("token", { token: token.trim() })}>
      <h2 id="login-token-title">With an admin token</h2>
      <${Field} label="Token" id="login-token" hint="galley token create, or the server's admin.token file">
        <input id="login-token" aria-describedby="login-token-hint" type="password" name="token" autocomplete="off" required spellcheck="false"
          value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
      <//>
      ${error?.form === "token" ? html`<${ErrorBox} error=${error.error} title="Not logged in" />` : null}
      <button type="submit" class="primary" disabled=${busy !== undefined}>Log in</button>
    </form>
  </div>`;
}
