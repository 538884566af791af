// Certificates for TLS registries and the token server, made with the openssl CLI (Debian
// `openssl`): node can create keys but not X.509 certificates. Everything is short-lived and
// written into a directory the caller cleans up.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim().split('\n').pop() ?? String(error)}`);
  }
}

export interface CertAuthority {
  certFile: string;
  keyFile: string;
  /** PEM text of the CA certificate. */
  cert: string;
}

export interface KeyPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** A fresh CA (P-256, valid two days) in `dir`, named `<name>.crt`/`<name>.key`. */
export async function makeCa(dir: string, name = 'ca', commonName = 'buildx-bootstrap test CA'): Promise<CertAuthority> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

/**
 * A server certificate signed by `ca` for 127.0.0.1 (IP SAN), ::1 and localhost — the names a
 * loopback registry is reached by — plus `extraDnsNames` (e.g. a `.invalid` name reached only
 * through a test proxy).
 */
export async function makeServerCert(ca: CertAuthority, dir: string, name = 'server', extraDnsNames: string[] = []): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(
    extFile,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost${extraDnsNames.map((n) => `,DNS:${n}`).join('')}`,
      '',
    ].join('\n'),
  );
  await openssl(
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', '/CN=127.0.0.1'],
    dir,
  );
  await openssl(
    ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile],
    dir,
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** A client certificate signed by `ca` (extendedKeyUsage clientAuth), for mutual TLS. */
export async function makeClientCert(ca: CertAuthority, dir: string, name = 'client'): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${name}`], dir);
  await openssl(['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile], dir);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/**
 * A self-signed RSA certificate for signing registry tokens (RS256). distribution 2.8 trusts a
 * token whose `x5c` chain verifies against `auth.token.rootcertbundle`
 * (DIST@v2.8.2 registry/auth/token/token.go `parseAndVerifyCertChain`); a self-signed cert that
 * is itself the root bundle satisfies that.
 */
export async function makeTokenSigningCert(dir: string, name = 'token-signer'): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await openssl(
    [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
      '-subj', '/CN=buildx-bootstrap test token issuer',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
    ],
    dir,
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** The base64 DER body of a PEM certificate (what a JWT `x5c` entry holds). */
export function pemToDerBase64(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m?.[1]) throw new Error('no certificate in PEM text');
  return m[1].replace(/\s+/g, '');
}
