// Where the mesh is: the local mesh's run directory (state.json, written by
// `shopmesh up` / LocalMesh) names every replica's sidecar and the edge. The
// environment overrides it, with the variable names the Python clients use.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface MeshEndpoints {
  /** Service -> host:port of every replica's sidecar (mTLS inbound). */
  services: Record<string, string[]>;
  /** The edge's base URL, for REST/JSON. */
  edgeUrl?: string;
}

interface RunState {
  edge?: { url?: string | null };
  replicas?: { service: string; inbound: string }[];
}

export function discover(runDir: string, env: NodeJS.ProcessEnv = process.env): MeshEndpoints {
  const found: MeshEndpoints = { services: {} };
  const statePath = join(runDir, "state.json");
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, "utf8")) as RunState;
    for (const replica of state.replicas ?? []) {
      (found.services[replica.service] ??= []).push(replica.inbound);
    }
    found.edgeUrl = state.edge?.url ?? undefined;
  }
  for (const [name, value] of Object.entries(env)) {
    const service = /^SHOPMESH_UPSTREAM_([A-Z0-9_]+)$/.exec(name)?.[1];
    if (service && value) found.services[service.toLowerCase()] = value.split(",");
  }
  found.edgeUrl = env.SHOPMESH_EDGE_URL || found.edgeUrl;
  return found;
}
