import type { Host } from "../../core/host.ts";
import { haproxyDriver } from "./haproxy.ts";

/** One server of a load balancer's backend, as the load balancer reports it. */
export interface BackendServerState {
  name: string;
  /** the load balancer's own word for it: "UP", "DRAIN", "MAINT", "DOWN", "UP 1/2"… */
  status: string;
  /** current sessions */
  sessions: number;
  /** up and taking new requests: status UP (not DRAIN, MAINT, NOLB or DOWN) */
  up: boolean;
  /** out of the rotation (admin state drain or maint) and no session left on it */
  drained: boolean;
  /** the admin state asked for through the runtime API or the configuration */
  admin: "ready" | "drain" | "maint";
  /** the weight asked through the runtime API (HAProxy's srv_uweight), when the load balancer says */
  weight?: number;
}

/** What a deployment needs from a load balancer: read, on the lb host, where each server stands. */
export interface LoadBalancerDriver {
  /** every server of `backend` as the load balancer reports it, read on the lb host */
  states(
    host: Host,
    backend: string,
    options?: { socket?: string },
  ): Promise<Map<string, BackendServerState>>;
}

/** The load balancers a deployment can drain instances through, by the type a stack names. */
export const loadBalancers = { haproxy: haproxyDriver } as const satisfies Record<string, LoadBalancerDriver>;

export type LoadBalancerType = keyof typeof loadBalancers;
