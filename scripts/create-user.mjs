#!/usr/bin/env node
// Create a local user without GoTrue: an auth.users row, its public.users profile (company
// and role), and a signed access token to act as that user from curl or supabase-js.
//
//   npm run user -- --email ada@acme.test --company "Acme" --role ADMIN
//
// --company takes a company id or a name (a new company is created for an unknown name).
// Reads DB_URL and JWT_SECRET from .local/stack.env (written by `npm start`) or the env.
import { parseArgs } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { isMain, LOCAL_DIR } from './lib/env.mjs';
import { userToken } from './lib/keys.mjs';

const USAGE = 'usage: npm run user -- --email <email> --company <id or name> [--role ADMIN|MEMBER|OPERATOR] [--inactive] [--hours 1] [--json]';

function stackEnv() {
  const file = path.join(LOCAL_DIR, 'stack.env');
  if (!fs.existsSync(file)) return {};
  return Object.fromEntries(
    fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** Creates the user; returns { userId, companyId, token }. Also used by the demo. */
export async function createLocalUser({ dbUrl, jwtSecret, email, company, role = 'MEMBER', active = true, hours = 1 }) {
  // Checked before anything is written: the token is made after the commit.
  if (!(Number.isFinite(hours) && hours > 0)) throw new Error(`--hours must be a positive number of hours, got ${hours}`);
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query('begin');
    const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(company);
    let found = await client.query(`select id from public.companies where ${isUuid ? 'id = $1::uuid' : 'name = $1'} limit 1`, [company]);
    if (found.rowCount === 0) {
      if (isUuid) throw new Error(`no company with id ${company}`);
      found = await client.query('insert into public.companies (name) values ($1) returning id', [company]);
    }
    const companyId = found.rows[0].id;
    const user = await client.query(
      `insert into auth.users (id, email, aud, role, email_confirmed_at) values (gen_random_uuid(), $1, 'authenticated', 'authenticated', now()) returning id`,
      [email],
    );
    const userId = user.rows[0].id;
    await client.query(
      'insert into public.users (supabase_uid, company_id, email, role, is_active) values ($1, $2, $3, $4, $5)',
      [userId, companyId, email, role, active],
    );
    await client.query('commit');
    const token = await userToken(userId, { email, secret: jwtSecret, expiresInSeconds: Math.round(hours * 3600) });
    return { userId, companyId, token };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      email: { type: 'string' },
      company: { type: 'string' },
      role: { type: 'string', default: 'MEMBER' },
      inactive: { type: 'boolean', default: false },
      hours: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.email || !values.company) {
    console.error(USAGE);
    process.exit(2);
  }
  const env = { ...stackEnv(), ...process.env };
  if (!env.DB_URL) {
    console.error('DB_URL is not set and .local/stack.env does not exist: start the stack first with `npm start`.');
    process.exit(2);
  }
  try {
    const made = await createLocalUser({
      dbUrl: env.DB_URL,
      jwtSecret: env.JWT_SECRET,
      email: values.email,
      company: values.company,
      role: values.role.toUpperCase(),
      active: !values.inactive,
      hours: Number(values.hours),
    });
    // The portal page of the running stack, signed in as this user (the token stays in the fragment: never sent to a server).
    const portalBase = env.PORTAL_URL ?? (env.SUPABASE_URL ? `${env.SUPABASE_URL}/portal` : null);
    const portalUrl = portalBase ? `${portalBase}#access_token=${made.token}` : null;
    if (values.json) console.log(JSON.stringify({ ...made, portalUrl }));
    else {
      console.log(`user    ${made.userId} (${values.email}, ${values.role.toUpperCase()}${values.inactive ? ', inactive' : ''})`);
      console.log(`company ${made.companyId}`);
      console.log(`token   ${made.token}`);
      console.log(`\ncurl -H "apikey: $SUPABASE_ANON_KEY" -H "Authorization: Bearer ${made.token.slice(0, 12)}..." $SUPABASE_URL/rest/v1/webhooks`);
      if (portalUrl) console.log(`\nportal (valid ${values.hours} h): ${portalUrl}`);
    }
  } catch (err) {
    console.error(`could not create the user: ${err.message}`);
    process.exit(1);
  }
}
