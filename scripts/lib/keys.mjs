// API keys and user tokens for the local stack: HS256 JWTs signed with the local JWT
// secret, carrying the claims Supabase puts in its own keys, so supabase-js and
// PostgREST treat them exactly as on a hosted project.
import { SignJWT } from 'jose';
import { envStr } from './env.mjs';

/** Supabase's documented local development secret (32+ characters); override with JWT_SECRET. */
export const DEFAULT_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

export function jwtSecret() {
  const secret = envStr('JWT_SECRET', DEFAULT_JWT_SECRET);
  if (secret.length < 32) throw new Error(`JWT_SECRET must be at least 32 characters (PostgREST refuses shorter), got ${secret.length}`);
  return secret;
}

const TEN_YEARS = 10 * 365 * 24 * 3600;

async function sign(claims, secret, expiresInSeconds) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + expiresInSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** The anon and service-role API keys (as `supabase status` shows them). */
export async function apiKeys(secret = jwtSecret()) {
  return {
    anonKey: await sign({ iss: 'supabase-demo', role: 'anon' }, secret, TEN_YEARS),
    serviceRoleKey: await sign({ iss: 'supabase-demo', role: 'service_role' }, secret, TEN_YEARS),
  };
}

/** A signed-in user's access token, with the claims GoTrue issues. */
export async function userToken(userId, { email, secret = jwtSecret(), expiresInSeconds = 3600 } = {}) {
  return sign(
    {
      iss: 'supabase-local',
      sub: userId,
      aud: 'authenticated',
      role: 'authenticated',
      email,
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {},
      aal: 'aal1',
      session_id: crypto.randomUUID(),
    },
    secret,
    expiresInSeconds,
  );
}
