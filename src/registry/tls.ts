// Which certificates a registry connection trusts: the mirror's `ca:` file,
// `<certsDir>/<host>/*.crt` (docker's per-registry CA directory, default /etc/docker/certs.d),
// and NODE_EXTRA_CA_CERTS. Node loads NODE_EXTRA_CA_CERTS into its default store at start-up,
// but passing `ca` to a TLS connection *replaces* that store, so the transport (http.ts) adds
// node's root certificates to these extra ones: a custom bundle is always roots + every file.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsSettings } from './exchange.js';
import type { RegistryEndpoint } from './types.js';

export const DOCKER_CERTS_DIR = '/etc/docker/certs.d';

export interface TlsSources {
  env: Record<string, string | undefined>;
  /** Root of per-registry CA directories; default /etc/docker/certs.d. */
  certsDir?: string;
}

export interface ResolvedTls extends TlsSettings {
  /** Files the extra CAs came from (for diagnostics; never secret). */
  caFiles: string[];
}

/** Reads the CA files that apply to `endpoint`. Throws an Error naming an unreadable `ca:` file. */
export function resolveTls(endpoint: RegistryEndpoint, sources: TlsSources): ResolvedTls {
  const extra: string[] = [];
  const caFiles: string[] = [];
  if (endpoint.ca) {
    try {
      extra.push(readFileSync(endpoint.ca, 'utf8'));
      caFiles.push(endpoint.ca);
    } catch (error) {
      throw new Error(`cannot read CA file ${endpoint.ca} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const hostDir = join(sources.certsDir ?? DOCKER_CERTS_DIR, endpoint.host);
  let names: string[] = [];
  try {
    names = readdirSync(hostDir).filter((n) => n.endsWith('.crt')).sort();
  } catch {
    // no directory for this host: the usual case
  }
  for (const name of names) {
    try {
      extra.push(readFileSync(join(hostDir, name), 'utf8'));
      caFiles.push(join(hostDir, name));
    } catch {
      // unreadable file in a system directory: docker skips it too
    }
  }
  const nodeExtra = sources.env.NODE_EXTRA_CA_CERTS;
  // Read here even though node may have loaded it already: the environment the CLI was given
  // (io.env) is what counts, and in-process runs never restart node.
  if (nodeExtra) {
    try {
      extra.push(readFileSync(nodeExtra, 'utf8'));
      caFiles.push(nodeExtra);
    } catch {
      // node itself only warns about an unreadable NODE_EXTRA_CA_CERTS
    }
  }
  const rejectUnauthorized = !endpoint.insecure;
  if (extra.length === 0) return { rejectUnauthorized, caFiles };
  return { ca: extra, rejectUnauthorized, caFiles };
}
