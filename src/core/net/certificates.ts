// A small certificate authority: a self-signed CA, optionally name-constrained to some DNS domains, that issues
// short-lived server certificates. The emulator answers as Google's hostnames with it; the intercepting proxy will
// sign its leaves with it. Node's crypto parses certificates but cannot issue them: the ASN.1 structures come from
// @peculiar/asn1-x509, the keys and signatures from node:crypto (ECDSA P-256, SHA-256).
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/asn1-x509';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';

export interface CertificateAuthority {
  certPem: string;
  /** PKCS#8 PEM: a secret, never printed or logged. */
  keyPem: string;
  /** A server certificate for these DNS names or IP addresses, signed by this CA. */
  issue(hosts: string[], options: { lifetimeMs?: number; now: number }): { certPem: string; keyPem: string };
}

export interface CaOptions {
  commonName: string;
  /** X.509 name constraints: the CA can sign only for these DNS domains and their subdomains. */
  permittedDns?: string[];
  /**
   * With permittedDns, the IP addresses (CIDR, `127.0.0.1/32`) it may also sign for; every other address is excluded.
   * DNS constraints alone leave IP addresses unconstrained (RFC 5280 §4.2.1.10): the key could sign for any IP.
   */
  permittedIps?: string[];
  lifetimeMs?: number;
  /** The wall clock (ms): certificates are valid from a minute before it. */
  now: number;
}

const pem = (label: string, der: Buffer | ArrayBuffer) => `-----BEGIN ${label}-----\n${Buffer.from(der as ArrayBuffer).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;

function name(commonName: string): x509.Name {
  return new x509.Name([new x509.RelativeDistinguishedName([new x509.AttributeTypeAndValue({ type: COMMON_NAME, value: new x509.AttributeValue({ utf8String: commonName }) })])]);
}

const extension = (extnID: string, critical: boolean, value: unknown) => new x509.Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/** The key identifier RFC 5280 §4.2.1.2 suggests: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: x509.SubjectPublicKeyInfo): ArrayBuffer {
  const digest = createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
  return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer;
}

function spkiOf(key: KeyObject): x509.SubjectPublicKeyInfo {
  return AsnConvert.parse(key.export({ type: 'spki', format: 'der' }), x509.SubjectPublicKeyInfo);
}

function serial(): ArrayBuffer {
  const bytes = randomBytes(16);
  // A positive INTEGER with no leading zero octet (DER is minimal: a 0x00 first byte would be illegal padding).
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 16) as ArrayBuffer;
}

function signed(tbs: x509.TBSCertificate, issuerKey: KeyObject): string {
  const der = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', der, { key: issuerKey, dsaEncoding: 'der' });
  const cert = new x509.Certificate({ tbsCertificate: tbs, signatureAlgorithm: new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer });
  return pem('CERTIFICATE', AsnConvert.serialize(cert));
}

function generalName(host: string): x509.GeneralName {
  return isIP(host) ? new x509.GeneralName({ iPAddress: host }) : new x509.GeneralName({ dNSName: host });
}

export function createCertificateAuthority(options: CaOptions): CertificateAuthority {
  const now = options.now;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = spkiOf(publicKey);
  const subject = name(options.commonName);
  const extensions = [
    extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
    extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)),
    extension(x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyIdentifier(spki))),
  ];
  if (options.permittedDns?.length) {
    // `*.run.app` and `run.app` both constrain to run.app and every name under it (RFC 5280 §4.2.1.10).
    const subtree = (base: x509.GeneralName) => new x509.GeneralSubtree({ base });
    const dns = options.permittedDns.map((d) => subtree(new x509.GeneralName({ dNSName: d.replace(/^\*\./, '') })));
    const ips = (options.permittedIps ?? []).map((cidr) => subtree(new x509.GeneralName({ iPAddress: cidr })));
    // A permitted IPv4 range leaves IPv6 unmatched (and so refused); with none, both families are excluded outright.
    const excluded = ips.length ? [] : ['0.0.0.0/0', '::/0'].map((cidr) => subtree(new x509.GeneralName({ iPAddress: cidr })));
    extensions.push(extension(x509.id_ce_nameConstraints, true, new x509.NameConstraints({ permittedSubtrees: new x509.GeneralSubtrees([...dns, ...ips]), ...(excluded.length ? { excludedSubtrees: new x509.GeneralSubtrees(excluded) } : {}) })));
  }
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: serial(),
    signature: new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    issuer: subject,
    validity: new x509.Validity({ notBefore: new Date(now - 60_000), notAfter: new Date(now + (options.lifetimeMs ?? 10 * 365 * 86_400_000)) }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new x509.Extensions(extensions),
  });
  return authority(signed(tbs, privateKey), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}

/** A CA from its PEM files (one an operator made, or one generated earlier). */
export function loadCertificateAuthority(certPem: string, keyPem: string): CertificateAuthority {
  return authority(certPem, keyPem);
}

function authority(certPem: string, keyPem: string): CertificateAuthority {
  const key = createPrivateKey(keyPem);
  const caCert = AsnConvert.parse(Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'), x509.Certificate);
  const caSpki = spkiOf(createPublicKey(key));
  return {
    certPem,
    keyPem,
    issue(hosts, options) {
      const now = options.now;
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const spki = spkiOf(publicKey);
      const tbs = new x509.TBSCertificate({
        version: x509.Version.v3,
        serialNumber: serial(),
        signature: new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
        issuer: caCert.tbsCertificate.subject,
        validity: new x509.Validity({ notBefore: new Date(now - 60_000), notAfter: new Date(now + (options.lifetimeMs ?? 24 * 3_600_000)) }),
        subject: name(hosts[0]!),
        subjectPublicKeyInfo: spki,
        extensions: new x509.Extensions([
          extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false })),
          extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature)),
          extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage([x509.id_kp_serverAuth])),
          extension(x509.id_ce_subjectAltName, false, new x509.SubjectAlternativeName(hosts.map(generalName))),
          extension(x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyIdentifier(spki))),
          extension(x509.id_ce_authorityKeyIdentifier, false, new x509.AuthorityKeyIdentifier({ keyIdentifier: new x509.KeyIdentifier(keyIdentifier(caSpki)) })),
        ]),
      });
      return { certPem: signed(tbs, key), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
    },
  };
}
