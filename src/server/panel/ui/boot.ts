// A classic script (no imports), run after the page's modules: when the panel's code did not start
// (a module's download failed, e.g. Chromium's ERR_NETWORK_CHANGED when the machine's interfaces
// change), the page is loaded again, at most twice in a row, instead of staying on "Loading Galley…".

const bootKey = "galley-boot-reloads";

addEventListener("load", () => {
  // main.ts replaces the boot paragraph synchronously when it runs
  if (document.querySelector("#app > .boot") === null) {
    sessionStorage.removeItem(bootKey);
    return;
  }
  const reloads = Number(sessionStorage.getItem(bootKey) ?? "0");
  const boot = document.querySelector("#app > .boot");
  if (reloads >= 2) {
    sessionStorage.removeItem(bootKey);
    if (boot !== null)
      boot.textContent = "The panel's code did not load. Check the connection and reload the page.";
    return;
  }
  sessionStorage.setItem(bootKey, String(reloads + 1));
  setTimeout(() => location.reload(), 300 * (reloads + 1));
});
