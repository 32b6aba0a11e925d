import assert from "node:assert/strict";
import { checkTarget, classifyAddress, type Resolver, targetKey } from "./ssrf.ts";

const none = new Set<string>();
/** Resolver for tests: a fixed zone; unknown names fail like NXDOMAIN. */
const zone = (records: Record<string, string[]>): Resolver => (host) => {
  const found = records[host];
  return found ? Promise.resolve(found) : Promise.reject(new Deno.errors.NotFound(`no such host ${host}`));
};
const unreachableResolver: Resolver = (host) => {
  throw new Error(`resolver must not be called for ${host}`);
};

Deno.test("ssrf: every textual form of a loopback host is refused", async () => {
  const forms = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "0177.0.0.1",
    "0x7f.1",
    "127.0.0.1.",
    "127.255.255.254",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
    "localhost",
    "LOCALHOST",
    "localhost.",
    "foo.localhost",
    "foo.localhost.",
    "ｌｏｃａｌｈｏｓｔ",
  ];
  for (const host of forms) {
    const verdict = await checkTarget(`http://${host}:8080/hook`, {
      allowedTargets: none,
      resolve: unreachableResolver,
    });
    assert.equal(verdict.allowed, false, `${host} must be refused`);
    assert.equal(verdict.transient, false, host);
    assert.match(verdict.reason, /loopback/, `${host}: ${verdict.reason}`);
  }
});

Deno.test("ssrf: 0 and 0.0.0.0 are the unspecified address", async () => {
  for (const host of ["0", "0.0.0.0", "[::]"]) {
    const verdict = await checkTarget(`http://${host}/`, { allowedTargets: none });
    assert.equal(verdict.allowed, false);
    assert.match(verdict.reason, /unspecified/);
  }
});

Deno.test("ssrf: non-public addresses are refused", () => {
  const blocked: Record<string, RegExp> = {
    "10.1.2.3": /private/,
    "172.16.0.1": /private/,
    "172.31.255.255": /private/,
    "192.168.1.1": /private/,
    "169.254.169.254": /link-local/,
    "169.254.0.1": /link-local/,
    "fe80::1": /link-local/,
    "100.64.0.1": /carrier-grade NAT/,
    "100.100.100.200": /carrier-grade NAT/, // Alibaba Cloud metadata
    "192.0.0.192": /reserved/, // Oracle Cloud metadata
    "224.0.0.1": /multicast/,
    "239.255.255.250": /multicast/,
    "ff02::1": /multicast/,
    "255.255.255.255": /broadcast/,
    "240.0.0.1": /reserved/,
    "192.0.2.1": /reserved or documentation/,
    "198.51.100.7": /reserved or documentation/,
    "203.0.113.9": /reserved or documentation/,
    "2001:db8::1": /reserved or documentation/,
    "3fff::1": /reserved or documentation/,
    "198.18.0.1": /reserved/,
    "fc00::1": /unique local/,
    "fd00:ec2::254": /unique local/, // AWS metadata over IPv6
    "fec0::1": /site-local/,
    "100::1": /special-purpose \(discard\)/,
    "::ffff:10.0.0.1": /IPv4-mapped IPv6 of 10\.0\.0\.1 \(private/,
    "::ffff:0:a9fe:a9fe": /IPv4-translated IPv6 of 169\.254\.169\.254/,
    "64:ff9b::a9fe:a9fe": /NAT64 IPv6 of 169\.254\.169\.254/,
    "64:ff9b:1::c0a8:101": /NAT64 IPv6 of 192\.168\.1\.1/,
    "2002:a9fe:a9fe::1": /6to4 IPv6 of 169\.254\.169\.254/,
    "::a00:1": /IPv4-compatible IPv6 of 10\.0\.0\.1/,
    "2001::1": /Teredo|reserved/,
    "4000::1": /outside IPv6 global unicast/,
  };
  for (const [address, reason] of Object.entries(blocked)) {
    const verdict = classifyAddress(address);
    assert.equal(verdict.allowed, false, `${address} must be refused`);
    assert.match(verdict.range, reason, `${address}: ${verdict.range}`);
  }
});

Deno.test("ssrf: public unicast addresses are allowed, also through NAT64 and IPv4-mapped forms", () => {
  for (
    const address of [
      "8.8.8.8",
      "1.1.1.1",
      "172.32.0.1",
      "192.169.0.1",
      "100.128.0.1",
      "2606:4700:4700::1111",
      "::ffff:8.8.8.8",
      "64:ff9b::808:808",
      "2002:808:808::1",
    ]
  ) {
    assert.deepEqual(classifyAddress(address), { allowed: true, range: "unicast" }, address);
  }
  assert.equal(classifyAddress("example.com").allowed, false);
});

Deno.test("ssrf: names that only resolve privately are refused without DNS", async () => {
  for (const host of ["metadata.google.internal", "db.internal", "printer.local", "router.home.arpa", "intranet"]) {
    const verdict = await checkTarget(`https://${host}/`, { allowedTargets: none, resolve: unreachableResolver });
    assert.equal(verdict.allowed, false, host);
    assert.equal(verdict.transient, false, host);
    assert.match(verdict.reason, new RegExp(`^${host.replace(/\./g, "\\.")}: `));
  }
});

Deno.test("ssrf: one private address among the resolved ones is enough to refuse", async () => {
  const resolve = zone({
    "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.example.com": ["93.184.215.14", "10.0.0.5"],
    "mapped.example.com": ["::ffff:169.254.169.254"],
  });
  const ok = await checkTarget("https://hooks.example.com/serial", { allowedTargets: none, resolve });
  assert.deepEqual(ok, {
    allowed: true,
    reason: "every resolved address is public",
    addresses: ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    key: "hooks.example.com:443",
    transient: false,
  });

  const mixed = await checkTarget("https://rebind.example.com/", { allowedTargets: none, resolve });
  assert.equal(mixed.allowed, false);
  assert.equal(mixed.reason, "rebind.example.com resolves to 10.0.0.5, which is private (RFC 1918)");
  assert.deepEqual(mixed.addresses, ["93.184.215.14", "10.0.0.5"]);

  const mapped = await checkTarget("https://mapped.example.com./", { allowedTargets: none, resolve });
  assert.equal(mapped.allowed, false);
  assert.match(mapped.reason, /IPv4-mapped IPv6 of 169\.254\.169\.254/);
});

Deno.test("ssrf: DNS failures refuse, but as transient", async () => {
  const failed = await checkTarget("https://nxdomain.example.com/", { allowedTargets: none, resolve: zone({}) });
  assert.equal(failed.allowed, false);
  assert.equal(failed.transient, true);
  assert.match(failed.reason, /^DNS lookup for nxdomain\.example\.com failed: no such host/);

  const empty = await checkTarget("https://empty.example.com/", {
    allowedTargets: none,
    resolve: zone({ "empty.example.com": [] }),
  });
  assert.equal(empty.transient, true);
  assert.equal(empty.reason, "empty.example.com has no A or AAAA records");
});

Deno.test("ssrf: only http and https URLs are considered", async () => {
  for (const url of ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "gopher://example.com:70/"]) {
    const verdict = await checkTarget(url, { allowedTargets: none, resolve: unreachableResolver });
    assert.equal(verdict.allowed, false, url);
    assert.match(verdict.reason, /^scheme .* is not allowed/);
  }
  const invalid = await checkTarget("not a url", { allowedTargets: none });
  assert.deepEqual([invalid.allowed, invalid.reason], [false, "not a valid URL"]);
  const zoned = await checkTarget("http://[fe80::1%25eth0]/", { allowedTargets: none });
  assert.equal(zoned.allowed, false);
});

Deno.test("ssrf: the allowlist exempts exactly one host:port, however it is spelled", async () => {
  const allowedTargets = new Set(["127.0.0.1:8080", "localhost:80", "[::1]:9000"]);
  const check = (url: string) => checkTarget(url, { allowedTargets, resolve: unreachableResolver });

  for (
    const url of ["http://127.0.0.1:8080/a", "http://127.1:8080/", "http://2130706433:8080/", "https://127.0.0.1:8080/"]
  ) {
    const verdict = await check(url);
    assert.equal(verdict.allowed, true, url);
    assert.equal(verdict.reason, "127.0.0.1:8080 is in WEBHOOK_ALLOWED_TARGETS");
    assert.deepEqual(verdict.addresses, []);
  }
  assert.equal((await check("http://localhost/")).allowed, true, "port defaults from the scheme");
  assert.equal((await check("http://LOCALHOST.:80/")).allowed, true);
  assert.equal((await check("http://[0::1]:9000/")).allowed, true);

  assert.equal((await check("http://127.0.0.1:8081/")).allowed, false, "another port");
  assert.equal((await check("https://localhost/")).allowed, false, "https defaults to 443");
  assert.equal((await check("http://127.0.0.2:8080/")).allowed, false, "another address");
  assert.equal((await check("http://[::1]:8080/")).allowed, false, "another family");
});

Deno.test("ssrf: targetKey normalizes host and default port", () => {
  assert.equal(targetKey(new URL("http://Example.COM./x")), "example.com:80");
  assert.equal(targetKey(new URL("https://example.com/x")), "example.com:443");
  assert.equal(targetKey(new URL("https://example.com:8443/x")), "example.com:8443");
  assert.equal(targetKey(new URL("http://[::ffff:127.0.0.1]:1/")), "[::ffff:7f00:1]:1");
});
