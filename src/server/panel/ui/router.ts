import { useEffect, useState } from "preact/hooks";

// Client-side navigation with the History API: links push a path, the back button pops one, and
// the frame (main.ts) re-renders the page the path names (routes.ts).

/** What a page module's default export receives. */
export interface PageProps {
  /** the route's parameters (`/stacks/:stack` → { stack }) */
  params: Record<string, string>;
  query: URLSearchParams;
  /** the path shown (without the query) */
  path: string;
}

/** Where the browser is. */
export interface Place {
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function here(): Place {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Shows `to` (a path of this panel, with its query) without reloading the page. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const current = location.pathname + location.search + location.hash;
  if (to === current && options.replace !== true) return;
  if (options.replace === true) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  for (const listener of listeners) listener();
  if (options.replace !== true) window.scrollTo(0, 0);
}

/** The current place; re-renders the component when it changes. */
export function usePlace(): Place {
  const [place, setPlace] = useState(here);
  useEffect(() => {
    const update = () => setPlace(here());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return place;
}
