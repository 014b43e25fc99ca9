/**
 * The `container` instance provider: real hosts on this machine (see docs/hosts.md). The CLI is
 * `galley hosts`; tests and tools use these functions.
 */
export { type AptRepo, ensureAptRepo, repoPackages } from "./apt-repo.ts";
export { execAttached, execInHost, nsenterArgv } from "./exec.ts";
export { type FleetPaths, fleetPaths } from "./fleet.ts";
export { helloPackage } from "./hello-deb.ts";
export { ensureImage, type Image, type ImageName, images } from "./image.ts";
export { down, findHost, type HostAction, list, onHosts, type UpOptions, up } from "./ops.ts";
export { sshBanner } from "./ready.ts";
export type { FleetState, HostRecord, HostStatus, Init } from "./state.ts";
