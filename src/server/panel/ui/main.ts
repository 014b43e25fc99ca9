import type { ComponentType } from "preact";
import { html, render } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, can, type SessionInfo, setSession, toLogin, useSession } from "./api.ts";
import { ErrorBox, Link, Loading } from "./components.ts";
import { type PageName, resolveRoute } from "./routes.ts";
import { navigate, type PageProps, usePlace } from "./router.ts";

// The panel's frame: the header (Galley, the navigation, who is logged in, Log out), a skip link,
// and the page the path names, loaded on first use. The session is read once at start; without one,
// every page but /login sends the browser to /login (and back after).

type PageModule = { default: ComponentType<PageProps> };

const loaded = new Map<PageName, Promise<PageModule>>();

/**
 * A page module, loaded once (`import()` with a variable: each page is fetched when first shown).
 * A failed fetch (the network blinked) is tried twice more under another URL: the browser keeps a
 * module's failure for its URL.
 */
function loadPage(name: PageName): Promise<PageModule> {
  let page = loaded.get(name);
  if (page === undefined) {
    const attempt = (n: number): Promise<PageModule> =>
      (import(`./pages/${name}.ts${n === 0 ? "" : `?retry=${n}`}`) as Promise<PageModule>).catch(
        (error: unknown) => {
          if (n >= 2) throw error;
          return new Promise((resolve) => setTimeout(resolve, 300 * (n + 1))).then(() => attempt(n + 1));
        },
      );
    page = attempt(0);
    loaded.set(name, page);
    page.catch(() => loaded.delete(name));
  }
  return page;
}

function Page(props: {
  name: PageName;
  params: Record<string, string>;
  path: string;
  query: URLSearchParams;
}) {
  const [module, setModule] = useState<{ name: PageName; page: PageModule } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    let current = true;
    setError(undefined);
    loadPage(props.name).then(
      (page) => current && setModule({ name: props.name, page }),
      (e: unknown) =>
        current &&
        setError(new Error(`the page "${props.name}" could not be loaded (not built?): ${String(e)}`)),
    );
    return () => {
      current = false;
    };
  }, [props.name]);
  if (error !== undefined) return html`<${ErrorBox} error=${error} title="Page not loaded" />`;
  if (module === undefined || module.name !== props.name) return html`<${Loading} />`;
  const Component = module.page.default;
  // keyed by path: a new path is a new page (its state starts afresh)
  return html`<${Component} key=${props.path} params=${props.params} query=${props.query} path=${props.path} />`;
}

function Header(props: { session: SessionInfo | undefined; path: string }) {
  const { session } = props;
  const [error, setError] = useState<unknown>(undefined);
  const logOut = async () => {
    try {
      await api.del("/v1/session");
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        setError(e);
        return;
      }
    }
    setSession(undefined);
    navigate("/login", { replace: true });
  };
  const current = (href: string) =>
    (href === "/" ? props.path === "/" || props.path.startsWith("/stacks") : props.path.startsWith(href))
      ? "page"
      : undefined;
  return html`<header class="frame">
    <a class="skip" href="#main">Skip to content</a>
    <${Link} class="brand" href="/">Galley<//>
    ${
      session === undefined
        ? null
        : html`<nav aria-label="Main">
            <ul>
              <li><${Link} href="/" aria-current=${current("/")}>Stacks<//></li>
              <li><${Link} href="/audit" aria-current=${current("/audit")}>Audit<//></li>
              ${
                can(undefined, "admin") || session.actor.kind === "user"
                  ? html`<li><${Link} href="/users" aria-current=${current("/users")}>Users<//></li>`
                  : null
              }
            </ul>
          </nav>
          <div class="who">
            <span>Logged in as <strong>${session.actor.name}</strong>${
              session.actor.kind === "token" ? html` <small>(token)</small>` : null
            }</span>
            <button type="button" class="link" onClick=${logOut}>Log out</button>
          </div>`
    }
    ${error === undefined ? null : html`<${ErrorBox} error=${error} title="Log out failed" />`}
  </header>`;
}

function App() {
  const place = usePlace();
  const session = useSession();
  const [checked, setChecked] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    api.get<SessionInfo>("/v1/session").then(
      (s) => {
        setSession(s);
        setChecked(true);
      },
      (e: unknown) => {
        setChecked(true);
        if (!(e instanceof ApiError && e.status === 401)) setError(e);
      },
    );
  }, []);
  // after a navigation (not the first page), focus moves to the new page's content, as a page load would
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else document.getElementById("main")?.focus({ preventScroll: true });
  }, [place.path]);
  const route = resolveRoute(place.path);
  const needsLogin = checked && session === undefined && route?.page !== "login";
  useEffect(() => {
    if (needsLogin) toLogin();
  }, [needsLogin, place.path]);
  let body: unknown;
  if (error !== undefined) body = html`<${ErrorBox} error=${error} title="The server did not answer" />`;
  else if (!checked || needsLogin) body = html`<${Loading} />`;
  else if (route === undefined)
    body = html`<h1>Page not found</h1>
      <p>There is no page <code>${place.path}</code>. <${Link} href="/">Go to the stacks<//>.</p>`;
  else
    body = html`<${Page} name=${route.page} params=${route.params} path=${place.path} query=${place.query} />`;
  return html`<${Header} session=${session} path=${place.path} />
    <main id="main" tabindex="-1">${body}</main>`;
}

const root = document.getElementById("app");
if (root !== null) {
  root.textContent = "";
  render(html`<${App} />`, root);
}
