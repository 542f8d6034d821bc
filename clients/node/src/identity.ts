// A workload's mesh identity: its certificate and key, issued by the mesh CA
// with its SPIFFE ID as URI SAN, as Istio issues them. Peers are authenticated
// the way the mesh does it: by SPIFFE ID, not by host name.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, type ChannelCredentials } from "@grpc/grpc-js";

export interface Identity {
  /** spiffe://<trust domain>/ns/<namespace>/sa/<workload> */
  spiffeId: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function spiffeIds(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(", ")
    .filter((name) => name.startsWith("URI:spiffe://"))
    .map((name) => name.slice("URI:".length));
}

/**
 * The identity of `workload` from a certificate directory laid out as the local
 * mesh writes it: ca.pem, <workload>.pem, <workload>-key.pem.
 */
export function loadIdentity(certsDir: string, workload: string): Identity {
  const cert = readFileSync(join(certsDir, `${workload}.pem`));
  const [spiffeId] = spiffeIds(new X509Certificate(cert).subjectAltName);
  if (!spiffeId) throw new Error(`${workload}.pem carries no SPIFFE ID`);
  return {
    spiffeId,
    cert,
    ca: readFileSync(join(certsDir, "ca.pem")),
    key: readFileSync(join(certsDir, `${workload}-key.pem`)),
  };
}

/** The SPIFFE ID `workload` has in our trust domain and namespace. */
export function peerId(identity: Identity, workload: string): string {
  return identity.spiffeId.replace(/[^/]+$/, workload);
}

/**
 * mTLS credentials for calling `service`: we present our certificate, and accept
 * the peer only if the mesh CA issued its certificate to that service's SPIFFE ID.
 */
export function mtlsCredentials(identity: Identity, service: string): ChannelCredentials {
  const expected = peerId(identity, service);
  return credentials.createSsl(identity.ca, identity.key, identity.cert, {
    checkServerIdentity: (_host, peer) => {
      const presented = spiffeIds(peer.subjectaltname);
      if (presented.includes(expected)) return undefined;
      return new Error(`peer is ${presented.join(", ") || "no SPIFFE ID"}, expected ${expected}`);
    },
  });
}
