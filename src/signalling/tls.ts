import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { isLoopback, type VoxConfig } from '../config.ts';
import { VoxError } from '../errors.ts';

/**
 * HTTPS for the uWS app (docs/configuration.md "HTTPS"). Browsers give `getUserMedia` only to a
 * secure context: https://, or http:// on a loopback host. So a server reached over a LAN address
 * needs TLS, either its own (`server.tls.certFile`/`keyFile`, or a self-signed certificate made
 * here) or a reverse proxy's in front of it (docs/configuration.md "Behind a reverse proxy").
 */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  passphrase?: string;
  /** Generated here (browsers warn about it until the user accepts it). */
  selfSigned: boolean;
  /** SHA-256 fingerprint of the certificate, for the banner. */
  fingerprint: string;
}

const SELF_SIGNED_DIR = 'tls';
const CERT_NAME = 'self-signed-cert.pem';
const KEY_NAME = 'self-signed-key.pem';
/** Regenerate a self-signed certificate this long before it expires. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;
const VALID_DAYS = 365;

/** Does this config serve HTTPS, and with which files? Generates the self-signed pair when asked. */
export async function resolveTls(config: VoxConfig): Promise<TlsFiles | undefined> {
  const { tls } = config.server;
  if (tls.certFile !== undefined && tls.keyFile !== undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readFileSync(tls.certFile));
      readFileSync(tls.keyFile); // readable, so uWS does not fail later with no reason given
    } catch (err) {
      throw new VoxError('CONFIG_INVALID', `server.tls: cannot read the certificate or key (${(err as Error).message})`, { cause: err });
    }
    return { certFile: tls.certFile, keyFile: tls.keyFile, passphrase: tls.passphrase, selfSigned: false, fingerprint: cert.fingerprint256 };
  }
  const wanted = tls.selfSigned === true || (tls.selfSigned === 'auto' && config.auth.devMode === true && !isLoopback(config.server.host));
  if (!wanted) return undefined;
  return selfSignedCertificate(config.dataDir, certificateNames(config));
}

/** Names and addresses the self-signed certificate covers: loopback, this host's interfaces, the configured ones. */
export function certificateNames(config: Pick<VoxConfig, 'server' | 'media'>): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
  for (const address of interfaceAddresses()) names.add(address);
  const { host, publicUrl } = config.server;
  if (host !== '0.0.0.0' && host !== '::') names.add(host);
  if (!isUnspecified(config.media.announcedIp)) names.add(config.media.announcedIp);
  if (publicUrl !== undefined) names.add(new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''));
  return [...names];
}

/** Non-internal interface addresses of this host, IPv4 first. */
export function interfaceAddresses(): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4') v4.push(info.address);
      else if (!info.address.startsWith('fe80:')) v6.push(info.address); // link-local needs a zone id in URLs
    }
  }
  return [...v4, ...v6];
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}

function covers(cert: X509Certificate, name: string): boolean {
  return isIP(name) !== 0 ? cert.checkIP(name) !== undefined : cert.checkHost(name) !== undefined;
}

/**
 * The certificate in `<dataDir>/tls/`, made once and kept (so a browser that accepted it keeps
 * accepting it). It is made again when it is near expiry or no longer covers a name this server is
 * reached by (the host got a new address). P-256 ECDSA, SHA-256, serverAuth.
 */
export async function selfSignedCertificate(dataDir: string, names: string[]): Promise<TlsFiles> {
  const dir = join(dataDir, SELF_SIGNED_DIR);
  const certFile = join(dir, CERT_NAME);
  const keyFile = join(dir, KEY_NAME);
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    readFileSync(keyFile);
    const fresh = Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
    if (fresh && names.every((name) => covers(cert, name))) {
      return { certFile, keyFile, selfSigned: true, fingerprint: cert.fingerprint256 };
    }
  } catch {
    // missing or unreadable: make a new one below
  }
  // selfsigned (webpack-dev-server's choice; pure JS on @peculiar/x509 and WebCrypto): Node has no
  // API that writes an X.509 certificate, and no openssl binary may be assumed on the host.
  const { generate } = await import('selfsigned');
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'VoxLink self-signed' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: new Date(now.getTime() + VALID_DAYS * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) !== 0 ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })) },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Write then rename: a crash never leaves a key that does not match its certificate. A stale
  // .tmp from such a crash is removed first: `mode` applies only to a file that is created.
  rmSync(`${keyFile}.tmp`, { force: true });
  writeFileSync(`${keyFile}.tmp`, pems.private, { mode: 0o600 });
  writeFileSync(`${certFile}.tmp`, pems.cert, { mode: 0o644 });
  renameSync(`${keyFile}.tmp`, keyFile);
  renameSync(`${certFile}.tmp`, certFile);
  return { certFile, keyFile, selfSigned: true, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}

/**
 * URLs people can open: the configured public URL, else the bound address, else (bound to every
 * interface) each interface address, loopback last. The first is the one to print.
 */
export function reachableUrls(config: Pick<VoxConfig, 'server'>, port: number, secure: boolean): string[] {
  const scheme = secure ? 'https' : 'http';
  const format = (host: string): string => `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const urls: string[] = [];
  if (config.server.publicUrl !== undefined) urls.push(config.server.publicUrl.replace(/\/$/, ''));
  const { host } = config.server;
  if (host === '0.0.0.0' || host === '::') {
    for (const address of interfaceAddresses()) if (host === '::' || isIP(address) === 4) urls.push(format(address));
    urls.push(format('127.0.0.1'));
  } else {
    urls.push(format(host));
  }
  return [...new Set(urls)];
}

/**
 * Why remote clients could not reach the media address, or undefined when nothing looks wrong.
 * ICE candidates carry `media.announcedIp`; a loopback or unspecified one only works on this host.
 */
export function announcedIpProblem(config: Pick<VoxConfig, 'server' | 'media'>): string | undefined {
  if (!config.media.enabled) return undefined;
  const announced = config.media.announcedIp;
  if (isLoopback(config.server.host)) return undefined; // nobody remote can reach signalling either
  if (isUnspecified(announced)) {
    return `media.announcedIp is ${announced}: clients need a real address in their ICE candidates. Set VOXLINK_ANNOUNCED_IP to the address clients reach this host by.`;
  }
  if (isLoopback(announced)) {
    return `media.announcedIp is ${announced} while server.host is ${config.server.host}: remote clients will connect signalling but hear nothing. Set VOXLINK_ANNOUNCED_IP to the address clients reach this host by (for example ${interfaceAddresses()[0] ?? 'the LAN address'}).`;
  }
  return undefined;
}
