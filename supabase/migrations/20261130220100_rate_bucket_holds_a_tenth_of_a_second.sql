-- An endpoint's rate bucket holds a tenth of a second of requests, not a whole second.
--
-- 20261130220000 gave each rate-limited endpoint a bucket of one second of requests. A
-- bucket of capacity c refilled at r a second lets any one second see c + r requests: with
-- c = r, twice the rate an ADMIN typed (a quiet endpoint at 20 a second could get 20 at
-- once and 20 more within the second), which is what a receiver with a strict limit would
-- answer 429 to. Now c is a tenth of a second of requests, at least one: on average the
-- endpoint gets its rate, and no second sees more than the rate plus a tenth of it (at 20
-- a second, 22; at 1 a second, one request a second). A claim then finds at most a tenth
-- of a second's requests of the endpoint at once, and the endpoint is ready again a tenth
-- of a second later: claims visit a rate-limited endpoint with a backlog about ten times a
-- second, whatever its rate. private.endpoint_rate_tokens stays the one home of the
-- arithmetic; nothing else changes.
-- Test: supabase/tests/scheduling/endpoint-own-rate.test.sql.

create or replace function private.endpoint_rate_tokens(endpoint private.webhook_endpoints)
returns double precision
language plpgsql
stable
set search_path = ''
as $$
declare
  rate integer := endpoint.max_requests_per_second;
  capacity double precision;
begin
  if rate is null then
    return null;
  end if;
  capacity := greatest(1, ceil(rate / 10.0));
  return least(capacity,
               coalesce(endpoint.rate_tokens, capacity)
                 + rate * greatest(0, extract(epoch from now() - coalesce(endpoint.rate_updated_at, now()))::double precision));
end;
$$;
comment on function private.endpoint_rate_tokens(private.webhook_endpoints) is
  'Requests the endpoint may be sent now under its own rate: its bucket (a tenth of a second of requests, at least one) refilled since rate_updated_at. Null: no rate of its own.';
comment on column public.webhooks.max_requests_per_second is
  'Most requests this endpoint is sent per second on average, across all dispatchers (1-10,000); no second sees more than this plus a tenth. Null: no limit of its own.';
comment on column private.webhook_endpoints.rate_tokens is
  'Requests the endpoint''s bucket held at rate_updated_at (null: full, a tenth of a second of requests). See private.endpoint_rate_tokens.';
