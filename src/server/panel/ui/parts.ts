import { html } from "htm/preact";
import { Link } from "./components.ts";

// Small pieces the deployment, event, instance and report pages share: a list of facts laid out
// by the panel's .facts grid, and the breadcrumb trail above a page's heading.

/** One fact: its name and what to show (null, undefined or false: left out). */
export type FactItem = readonly [name: string, value: unknown];

/** Facts as a description list (one <div> per pair: side by side, stacked on a narrow screen). */
export function Facts(props: { items: readonly FactItem[] }) {
  const shown = props.items.filter(([, value]) => value !== null && value !== undefined && value !== false);
  return html`<dl class="facts">
    ${shown.map(([name, value]) => html`<div><dt>${name}</dt><dd>${value}</dd></div>`)}
  </dl>`;
}

/** One step of a trail: its text, and where it links (the last step, the page itself, links nowhere). */
export type Crumb = readonly [text: string, href?: string];

/** The trail to this page: "Stacks › webapp › Deployments › #7". */
export function Crumbs(props: { trail: readonly Crumb[] }) {
  return html`<nav class="crumbs" aria-label="Breadcrumb">
    ${props.trail.map(
      ([text, href], i) =>
        html`${i > 0 ? " › " : ""}${
          href === undefined
            ? html`<span aria-current="page">${text}</span>`
            : html`<${Link} href=${href}>${text}<//>`
        }`,
    )}
  </nav>`;
}
