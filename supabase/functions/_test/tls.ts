// Test-only TLS material: a self-signed certificate for localhost and 127.0.0.1,
// valid 2000-2126, used by send_test.ts to exercise the HTTPS path against a
// local receiver. The key protects nothing and is never used outside tests.

export const LOCALHOST_CERT = `-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEyNjAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGIgdyMZbQDT1dlV
gdeYGV/J206OqnVZ3dLSFaB+c97TS/6dr081GUjBAGDlbHqzVjAL8IZURjewavwB
r+gatXajcDBuMBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAMBgNVHRMBAf8E
AjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4E
FgQUALgd9phuclhbX4X0vakquciC4/8wCgYIKoZIzj0EAwIDSAAwRQIhAMSTjPcz
IpBapaESXjcw3jnnT89YwGcVev6SH5krre1tAiBkqhY5cvH9vjqXsh3gT/Rd+7G9
q6bWHfM5Vz9urow6mg==
-----END CERTIFICATE-----`;

export const LOCALHOST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB8OsHj4xddF4/pp2
Qn6ZUx4ae120pv1p/rUEEnNwfCKhRANCAARiIHcjGW0A09XZVYHXmBlfydtOjqp1
Wd3S0hWgfnPe00v+na9PNRlIwQBg5Wx6s1YwC/CGVEY3sGr8Aa/oGrV2
-----END PRIVATE KEY-----`;
