// SSRF policy: may the dispatcher contact this URL?
//
// Webhook URLs are chosen by tenants, so every one is a request the tenant
// makes from inside our network. We allow only public unicast destinations,
// judged on every address the name resolves to (one private A record among
// public ones is enough to refuse: the HTTP stack may pick any of them).
//
// Host spelling: the WHATWG URL parser (what fetch itself uses) already turns
// `127.1`, `0x7f000001`, `2130706433`, `017700000001` into `127.0.0.1` and
// compresses IPv6, so we classify `url.hostname` rather than re-parsing the
// raw string, and we judge exactly the host fetch will use.
//
// Range math is ipaddr.js (maintained, used by Express's proxy-addr); on top
// of its classification we unwrap IPv6 forms that embed an IPv4 address and
// require IPv6 destinations to be inside 2000::/3, the only block IANA
// allocates for global unicast.

import ipaddr from "ipaddr.js";

export interface TargetVerdict {
  allowed: boolean;
  /** Why, in words an admin can act on; recorded with the attempt. */
  reason: string;
  /** Vetted addresses (empty for allowlisted targets and for refusals before resolution). */
  addresses: string[];
  /** `host:port` as matched against WEBHOOK_ALLOWED_TARGETS. */
  key: string | null;
  /**
   * True when the refusal may go away by itself (DNS failure): the caller
   * should treat it as a failed attempt and retry, not as a policy block.
   */
  transient: boolean;
}

/** Returns every address `hostname` resolves to; throws on resolution failure or abort. */
export type Resolver = (hostname: string, signal?: AbortSignal) => Promise<string[]>;

export interface CheckTargetOptions {
  allowedTargets: ReadonlySet<string>;
  resolve?: Resolver;
  /** Aborts DNS resolution, so the attempt's timeout covers it too. */
  signal?: AbortSignal;
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

/** Normalized `host:port` of a URL, the form WEBHOOK_ALLOWED_TARGETS entries take. */
export function targetKey(url: URL): string {
  const port = url.port === "" ? DEFAULT_PORTS[url.protocol] ?? "" : url.port;
  return `${url.hostname.replace(/\.+$/, "")}:${port}`;
}

/**
 * Names refused before any DNS lookup. They never name a public receiver and
 * may be answered locally without DNS (RFC 6761 localhost, /etc/hosts, mDNS,
 * resolver search domains), so the DNS check below would not see what fetch
 * connects to.
 */
function blockedName(host: string): string | null {
  if (host === "localhost" || host.endsWith(".localhost")) return "localhost names are loopback";
  if (host === "metadata.google.internal") return "cloud metadata service";
  // .internal (ICANN private use, 2024), .local (mDNS), .home.arpa (RFC 8375).
  if (/\.(internal|local|home\.arpa)$/.test(host)) return "private-use domain";
  if (!host.includes(".")) return "single-label host names only resolve inside a private network";
  return null;
}

/** Default resolver: A and AAAA through Deno.resolveDns. */
const resolveWithDns: Resolver = async (hostname, signal) => {
  const lookup = async (type: "A" | "AAAA"): Promise<string[]> => {
    try {
      return await Deno.resolveDns(hostname, type, { signal });
    } catch (e) {
      // No record of this type is normal (IPv4-only hosts); anything else is real.
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const [v4, v6] = await Promise.all([lookup("A"), lookup("AAAA")]);
  return [...v4, ...v6];
};

export async function checkTarget(
  target: string | URL,
  options: CheckTargetOptions,
): Promise<TargetVerdict> {
  const refuse = (reason: string, key: string | null, addresses: string[] = []): TargetVerdict => ({
    allowed: false,
    reason,
    addresses,
    key,
    transient: false,
  });

  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return refuse("not a valid URL", null);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return refuse(`scheme ${url.protocol} is not allowed; use http: or https:`, null);
  }

  const key = targetKey(url);
  if (options.allowedTargets.has(key)) {
    return { allowed: true, reason: `${key} is in WEBHOOK_ALLOWED_TARGETS`, addresses: [], key, transient: false };
  }

  const host = url.hostname.replace(/\.+$/, "");
  const literal = host.startsWith("[") ? host.slice(1, -1) : host;
  if (ipaddr.isValid(literal)) {
    const verdict = classifyAddress(literal);
    return verdict.allowed
      ? { allowed: true, reason: "public address", addresses: [literal], key, transient: false }
      : refuse(`${literal} is ${verdict.range}`, key, [literal]);
  }

  const nameProblem = blockedName(host);
  if (nameProblem !== null) return refuse(`${host}: ${nameProblem}`, key);

  let addresses: string[];
  try {
    addresses = await (options.resolve ?? resolveWithDns)(host, options.signal);
  } catch (e) {
    return { ...refuse(`DNS lookup for ${host} failed: ${errorMessage(e)}`, key), transient: true };
  }
  if (addresses.length === 0) {
    return { ...refuse(`${host} has no A or AAAA records`, key), transient: true };
  }
  for (const address of addresses) {
    const verdict = classifyAddress(address);
    if (!verdict.allowed) return refuse(`${host} resolves to ${address}, which is ${verdict.range}`, key, addresses);
  }
  return { allowed: true, reason: "every resolved address is public", addresses, key, transient: false };
}

export interface AddressClass {
  allowed: boolean;
  /** ipaddr.js range name (`loopback`, `private`, ...) or our own description. */
  range: string;
}

/** Classifies one IP address (no brackets). Only public unicast is allowed. */
export function classifyAddress(address: string): AddressClass {
  if (!ipaddr.isValid(address)) return { allowed: false, range: "not an IP address" };
  const ip = ipaddr.parse(address);
  if (ip.kind() === "ipv4") return classifyV4(ip as ipaddr.IPv4);

  const v6 = ip as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded !== null) {
    const inner = classifyV4(embedded.address);
    return inner.allowed
      ? inner
      : { allowed: false, range: `${embedded.form} of ${embedded.address} (${inner.range})` };
  }
  const range = v6.range();
  if (range !== "unicast") return { allowed: false, range: describe(range) };
  if (!v6.match(GLOBAL_UNICAST_V6)) return { allowed: false, range: "outside IPv6 global unicast (2000::/3)" };
  return { allowed: true, range: "unicast" };
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");

function classifyV4(ip: ipaddr.IPv4): AddressClass {
  const range = ip.range();
  return range === "unicast" ? { allowed: true, range } : { allowed: false, range: describe(range) };
}

/**
 * IPv6 forms that deliver to an IPv4 address: judge them by that address, so
 * `::ffff:127.0.0.1` or `64:ff9b::a9fe:a9fe` are exactly as blocked as the
 * IPv4 they wrap, while NAT64 to a public address (IPv6-only networks) works.
 */
function embeddedIPv4(ip: ipaddr.IPv6): { form: string; address: ipaddr.IPv4 } | null {
  const p = ip.parts;
  const low32 = () => new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
  switch (ip.range()) {
    case "ipv4Mapped":
      return { form: "IPv4-mapped IPv6", address: low32() };
    case "rfc6145":
      return { form: "IPv4-translated IPv6", address: low32() };
    case "rfc6052":
      return { form: "NAT64 IPv6", address: low32() };
    case "6to4":
      return { form: "6to4 IPv6", address: new ipaddr.IPv4([p[1] >> 8, p[1] & 0xff, p[2] >> 8, p[2] & 0xff]) };
  }
  // Deprecated IPv4-compatible ::a.b.c.d; `::` and `::1` are classified as themselves.
  const range = ip.range();
  if (ip.match(IPV4_COMPATIBLE) && range !== "unspecified" && range !== "loopback") {
    return { form: "IPv4-compatible IPv6", address: low32() };
  }
  return null;
}

const DESCRIPTIONS: Record<string, string> = {
  unspecified: "unspecified",
  broadcast: "broadcast",
  multicast: "multicast",
  linkLocal: "link-local (includes cloud metadata 169.254.169.254)",
  loopback: "loopback",
  carrierGradeNat: "carrier-grade NAT (100.64.0.0/10)",
  private: "private (RFC 1918)",
  reserved: "reserved or documentation",
  uniqueLocal: "unique local (fc00::/7)",
  deprecatedSiteLocal: "site-local (fec0::/10)",
  teredo: "Teredo tunnelling",
  benchmarking: "benchmarking",
};

function describe(range: string): string {
  return DESCRIPTIONS[range] ?? `special-purpose (${range})`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
